"""Predictor: load a run directory, predict labels for texts. Loads no training code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from rnnclf.config import classifier_arguments
from rnnclf.data.readers import FORMATS, read_split
from rnnclf.engine.device import choose_device, choose_precision
from rnnclf.engine.inference import predict_logits
from rnnclf.errors import RnnclfError
from rnnclf.model import RNNClassifier
from rnnclf.quantize import quantize_int8, require_int8
from rnnclf.rundir import Run, load_run
from rnnclf.tokenizer import EncodedTexts, encode


class Predictor:
    """A trained classifier, ready for texts. Needs nothing but the run directory.

    `workers` threads each predict whole batches on the CPU: with one torch thread per process
    (rnnclf.engine.device.use_cpu_threads(1)) and one worker per core, the fastest use of the cores.
    """

    def __init__(
        self, run: Run, device: str = "auto", batch_size: int = 64, workers: int = 1, int8: bool = False
    ) -> None:
        self.run = run
        self.labels = run.labels
        self.tokenizer = run.tokenizer
        if int8 and device == "cuda":
            raise RnnclfError("--int8 runs on the CPU; use --device cpu (a GPU predicts fast in bf16 already)")
        self.device = choose_device("cpu" if int8 else device)
        self.dtype = choose_precision(self.device, run.config.train.amp, probe=False).autocast
        self.batch_size = batch_size
        self.workers = workers
        self.model = RNNClassifier(run.tokenizer.get_vocab_size(), len(run.labels), **classifier_arguments(run.config))
        try:
            self.model.load_state_dict(run.weights)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise RnnclfError(f"{run.path}: the weights do not fit the run's config ({first})") from None
        self.int8 = int8
        if int8:  # checked on the run's validation texts when it was allowed (rnnclf export --quantize int8)
            require_int8(run.path)
            self.model = quantize_int8(self.model)
        self.model.to(self.device).eval()

    @classmethod
    def load(cls, path: Path | str, device: str = "auto", workers: int = 1, int8: bool = False) -> Predictor:
        return cls(load_run(path), device, workers=workers, int8=int8)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        check_texts(texts)
        # the tokenizer truncates to the run's max_length, so a huge text costs no more than a long one
        return self.encoded_logits(encode(self.tokenizer, texts))

    def encoded_logits(self, encoded: EncodedTexts) -> np.ndarray:
        """Logits of texts already turned into token ids by this run's tokenizer."""
        return predict_logits(self.model, encoded, self.device, self.batch_size, self.dtype, self.workers)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.logits(texts)), dim=1).numpy()

    def predict(self, texts: Sequence[str], top_k: int = 1) -> list[list[tuple[str, float]]]:
        """For each text, the top_k (label, probability) pairs, most likely first."""
        return top_labels(self.predict_proba(texts), self.labels, top_k)


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


def format_predictions(texts: Sequence[str], predictions: Iterable[list[tuple[str, float]]], fmt: str) -> str:
    rows = list(zip(texts, predictions, strict=True))
    if fmt == "json":
        return "\n".join(
            json.dumps(
                {
                    "text": text,
                    "label": pred[0][0],
                    "probability": round(pred[0][1], 6),
                    "top": [{"label": label, "probability": round(p, 6)} for label, p in pred],
                },
                ensure_ascii=False,
            )
            for text, pred in rows
        )
    lines = []
    for text, pred in rows:
        shown = text if len(text) <= 60 else text[:57] + "..."
        lines.append(f"{shown:<60}  " + "  ".join(f"{label} {p:.3f}" for label, p in pred))
    return "\n".join(lines)
