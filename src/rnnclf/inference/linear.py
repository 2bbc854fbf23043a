"""The linear n-gram model alone (model.encoder none) predicting in numpy: no torch in the process, so `rnnclf
predict` over many texts spends its time on the texts, not on starting up. Gives the probabilities the torch
Predictor gives (a test holds them equal)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import safetensors.numpy

from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate, probabilities
from rnnclf.files import WEIGHTS
from rnnclf.inference.decisions import Decisions, check_texts
from rnnclf.runs.directory import Run, load_run

CHUNK = 2048  # texts whose n-grams are found and summed at a time


def is_linear(run: Run) -> bool:
    return run.config.model.encoder == "none"


class LinearPredictor(Decisions):
    def __init__(self, run: Run) -> None:
        if not is_linear(run):
            raise RnnclfError(f"{run.path}: not a linear model (model.encoder is {run.config.model.encoder})")
        self.run, self.labels, self.features = run, run.labels, run.wide
        self.multi_label, self.thresholds, self.temperature = (
            run.config.data.multi_label,
            run.thresholds,
            run.temperature,
        )
        try:
            tensors = safetensors.numpy.load_file(str(run.path / WEIGHTS))
            self.weight, self.bias = tensors["wide.weight"], tensors["wide.bias"]
            self.scale = float(tensors["wide.scale"])
        except Exception as exc:  # safetensors' own errors, or a file without the wide head's tensors
            raise RnnclfError(f"{run.path / WEIGHTS}: not the weights of a linear model ({exc})") from None

    @classmethod
    def load(cls, path: Path | str) -> LinearPredictor:
        return cls(load_run(path, weights=False))

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The model's scores of each text, divided by the run's temperature."""
        return self.logits_with_unknown(texts)[0]

    def predict_with_unknown(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities, and each text's share of words the model does not know (out-of-domain flags)."""
        logits, unknown = self.logits_with_unknown(texts)
        return probabilities(logits, self.multi_label).astype(np.float32), unknown

    def logits_with_unknown(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """logits, with each text's unknown-word share; CHUNK texts at a time, so the arrays stay small (in cache,
        and without page faults) whatever the number of texts."""
        check_texts(texts)
        texts = list(texts)
        sums = np.zeros((len(texts), self.weight.shape[1]), dtype=np.float32)
        unknown = np.zeros(len(texts))
        for start in range(0, len(texts), CHUNK):
            rows, unknown[start : start + CHUNK] = self.features.transform_with_unknown(texts[start : start + CHUNK])
            filled = np.diff(rows.offsets) > 0  # each row's n-grams are contiguous: one sum per row that has any
            if filled.any():
                weighted = self.weight[rows.indices] * rows.values[:, None]
                part = sums[start : start + CHUNK]
                part[filled] = np.add.reduceat(weighted, rows.offsets[:-1][filled], axis=0)
        return calibrate((sums + self.bias) * self.scale, self.temperature), unknown

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return probabilities(self.logits(texts), self.multi_label).astype(np.float32)
