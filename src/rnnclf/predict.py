"""Predictor: load a run directory, predict labels for texts; and evaluation of a run on labelled data."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnclf.data.corpus import check_labels, load_corpus
from rnnclf.data.readers import FORMATS, Split, read_split
from rnnclf.errors import RnnclfError
from rnnclf.files import write_json
from rnnclf.model import RNNClassifier
from rnnclf.plots import save_confusion
from rnnclf.run import Run, load_run
from rnnclf.text import encode
from rnnclf.train import amp_dtype, choose_device, evaluate, predict_logits


class Predictor:
    """A trained classifier, ready for texts. Needs nothing but the run directory."""

    def __init__(self, run: Run, device: str = "auto", batch_size: int = 64) -> None:
        self.run = run
        self.labels = run.labels
        self.tokenizer = run.tokenizer
        self.device = choose_device(device)
        self.dtype = amp_dtype(self.device, run.config.train.amp)
        self.batch_size = batch_size
        self.model = RNNClassifier(
            run.tokenizer.get_vocab_size(), len(run.labels), run.config.embedding, run.config.model
        )
        try:
            self.model.load_state_dict(run.weights)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise RnnclfError(f"{run.path}: the weights do not fit the run's config ({first})") from None
        self.model.to(self.device).eval()

    @classmethod
    def load(cls, path: Path | str, device: str = "auto") -> Predictor:
        return cls(load_run(path), device)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        check_texts(texts)
        # the tokenizer truncates to the run's max_length, so a huge text costs no more than a long one
        return predict_logits(self.model, encode(self.tokenizer, texts), self.device, self.batch_size, self.dtype)

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
    """Texts to predict from a file or '-' (stdin): CSV / TSV / JSONL by extension, otherwise one text per line."""
    if path == "-":
        return [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    file = Path(path)
    if file.suffix.lower() in FORMATS:
        return read_split(file, text_field, text_field, need_labels=False).texts
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


def evaluate_run(
    path: Path | str,
    data: Path | None = None,
    split: str | None = None,
    device: str = "auto",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Metrics of a run on a labelled file, or on its own valid / test split.

    Written to RUN/eval/<name>.json, and the confusion matrix to RUN/eval/<name>_confusion_matrix.png.
    """
    predictor = Predictor.load(path, device)
    config = predictor.run.config
    fields = config.data.text_field, config.data.label_field
    if data is not None:
        fmt = config.data.format if config.data.dataset is None else "auto"
        labelled = read_split(Path(data), *fields, fmt)
        name = f"file-{Path(data).stem}"  # never the name of a split's results
    elif split != "valid" and config.data.dataset is None and config.data.test is not None:
        labelled = read_split(config.data.test, *fields, config.data.format)  # the test file alone will do
        name = "test"
    else:
        try:
            corpus = load_corpus(config.data, config.train.seed)
        except RnnclfError as exc:
            raise RnnclfError(f"{exc} (the run's data is needed for its own splits; or give --data FILE)") from None
        choice = split or ("test" if corpus.test is not None else "valid")
        labelled = corpus.test if choice == "test" else corpus.valid
        if labelled is None:
            raise RnnclfError(f"{path}: the run's config has no test data; use --split valid or --data FILE")
        name = choice
    evaluation = evaluate_split(predictor, labelled)
    evaluation["data"] = labelled.source
    written = Path(path) / "eval" / f"{name}.json"
    write_json(written, evaluation)
    log(f"wrote {written}")
    save_confusion(
        evaluation, Path(path) / "eval" / f"{name}_confusion_matrix.png", f"{Path(path).resolve().name} on {name}", log
    )
    return evaluation


def evaluate_split(predictor: Predictor, labelled: Split) -> dict[str, Any]:
    check_labels(labelled, set(predictor.labels), predictor.run.config.data.label_field)
    index = {label: i for i, label in enumerate(predictor.labels)}
    targets = np.array([index[label] for label in labelled.labels], dtype=np.int64)
    return evaluate(
        predictor.model,
        encode(predictor.tokenizer, labelled.texts),
        targets,
        predictor.labels,
        predictor.device,
        predictor.dtype,
    )
