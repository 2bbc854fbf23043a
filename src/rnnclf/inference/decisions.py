"""Labels from probabilities, whatever computed them (torch, ONNX Runtime, numpy): the most probable class, or every
label over its threshold; and the texts a prediction reads (arguments, a file, stdin). Imports no torch."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnclf.data.readers import FORMATS, read_split
from rnnclf.errors import RnnclfError


class Decisions:
    """Labels from probabilities, for the torch and ONNX predictors: the most probable class, or for a multi-label
    run every label at or over its threshold (the run's thresholds.json; `set_threshold` overrides them all)."""

    labels: list[str]
    multi_label: bool = False
    thresholds: np.ndarray | None = None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def set_threshold(self, value: float | None) -> None:
        if value is None:
            return
        if not self.multi_label:
            raise RnnclfError("--threshold is for multi-label runs; a single-label run answers its most probable label")
        if not 0 <= value <= 1:
            raise RnnclfError(f"--threshold {value:g}: a threshold is a probability, between 0 and 1")
        self.thresholds = np.full(len(self.labels), value)

    def predict(self, texts: Sequence[str], top_k: int = 1) -> list[list[tuple[str, float]]]:
        """For each text, the top_k (label, probability) pairs, most likely first."""
        return top_labels(self.predict_proba(texts), self.labels, top_k)

    def predict_labels(self, texts: Sequence[str], top_k: int = 0) -> list[LabelSet]:
        """Multi-label: for each text the labels over their thresholds (maybe none), every label's probability,
        and the top_k best whatever their thresholds."""
        return self.label_sets(self.predict_proba(texts), top_k)

    def label_sets(self, probs: np.ndarray, top_k: int = 0) -> list[LabelSet]:
        """predict_labels of probabilities already computed."""
        tops = top_labels(probs, self.labels, top_k) if top_k else [[] for _ in probs]
        return [
            LabelSet(
                labels=[self.labels[j] for j in np.flatnonzero(row >= self.thresholds)],
                scores={self.labels[j]: float(row[j]) for j in np.argsort(-row, kind="stable")},
                top=top,
            )
            for row, top in zip(probs, tops, strict=True)
        ]


@dataclass
class LabelSet:
    """A multi-label decision: the labels over their thresholds, the probability of every label (most probable
    first) and the top-k labels asked for."""

    labels: list[str]
    scores: dict[str, float]
    top: list[tuple[str, float]]


def check_texts(texts: Sequence[str]) -> None:
    for position, text in enumerate(texts, start=1):
        if not isinstance(text, str) or not text.strip():
            raise RnnclfError(f"text {position}: empty text; nothing to classify")


def top_labels(probabilities: np.ndarray, labels: list[str], top_k: int) -> list[list[tuple[str, float]]]:
    """For each row of probabilities, the top_k (label, probability) pairs, most likely first."""
    k = max(1, min(top_k, len(labels)))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(labels[j], float(row[j])) for j in best] for row, best in zip(probabilities, order, strict=True)]


def read_inputs(path: str, text_field: str = "text") -> list[str]:
    """Texts to predict from a file or '-' (stdin): CSV / TSV / JSONL by extension, otherwise one text per line
    (blank lines skipped)."""
    if path == "-":
        return [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    file = Path(path)
    if file.suffix.lower() in FORMATS:
        hint = "choose the column with --text-field"
        return read_split(file, text_field, text_field, need_labels=False, hint=hint).texts
    if not file.exists():
        raise RnnclfError(f"{file}: file not found")
    if file.is_dir():
        raise RnnclfError(f"{file}: is a directory, expected a file of texts")
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise RnnclfError(f"{file}: not UTF-8 text; re-save the file as UTF-8") from None
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise RnnclfError(f"{file}: no texts in the file")
    return texts
