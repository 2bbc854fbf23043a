"""Evaluation of a run on labelled data: its own valid / test split or any labelled file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.data.corpus import check_labels, load_corpus
from rnnclf.data.readers import Split, read_split
from rnnclf.engine.inference import evaluate
from rnnclf.errors import RnnclfError
from rnnclf.files import write_json
from rnnclf.plots import save_confusion
from rnnclf.predict import Predictor
from rnnclf.tokenizer import encode


def evaluate_run(
    path: Path | str,
    data: Path | None = None,
    split: str | None = None,
    device: str = "auto",
    log: Callable[[str], None] = print,
    workers: int = 1,
) -> dict[str, Any]:
    """Metrics of a run on a labelled file, or on its own valid / test split.

    Written to RUN/eval/<name>.json, and the confusion matrix to RUN/eval/<name>_confusion_matrix.png.
    """
    predictor = Predictor.load(path, device, workers)
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
    encoded = encode(predictor.tokenizer, labelled.texts)
    model, device, dtype = predictor.model, predictor.device, predictor.dtype
    return evaluate(model, encoded, targets, predictor.labels, device, dtype, predictor.workers)
