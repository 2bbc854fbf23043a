"""Evaluation of a run on labelled data: its own valid / test split or any labelled file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.data.corpus import check_labels, load_corpus
from rnnclf.data.readers import Split, read_split
from rnnclf.engine.inference import scores
from rnnclf.errors import RnnclfError
from rnnclf.files import write_json
from rnnclf.plots import save_confusion
from rnnclf.predict import Predictor
from rnnclf.quantize import INT8_FILE, MAX_ACCURACY_DROP, MIN_AGREEMENT, judge, quantize_int8, quantized_layers
from rnnclf.rundir import Run, weights_digest
from rnnclf.tokenizer import EncodedTexts, encode


def evaluate_run(
    path: Path | str,
    data: Path | None = None,
    split: str | None = None,
    device: str = "auto",
    log: Callable[[str], None] = print,
    workers: int = 1,
    int8: bool = False,
) -> dict[str, Any]:
    """Metrics of a run on a labelled file, or on its own valid / test split; with `int8`, of its int8 model,
    with the fp32 model's accuracy and macro F1 beside them (`fp32`) and the share of labels they agree on.

    Written to RUN/eval/<name>.json (<name>-int8.json), and the confusion matrix beside it as a PNG.
    """
    predictor = Predictor.load(path, device, workers, int8=int8)
    labelled, name = labelled_split(predictor.run, data, split)
    if int8:
        evaluation, reference, agreement = compare(
            predictor, Predictor(predictor.run, "cpu", workers=workers), labelled
        )
        evaluation["fp32"] = {key: reference[key] for key in ("accuracy", "macro_f1", "weighted_f1", "loss")}
        evaluation["agreement"] = agreement
        name += "-int8"
    else:
        evaluation = evaluate_split(predictor, labelled)
    evaluation["data"] = labelled.source
    written = Path(path) / "eval" / f"{name}.json"
    write_json(written, evaluation)
    log(f"wrote {written}")
    save_confusion(
        evaluation, Path(path) / "eval" / f"{name}_confusion_matrix.png", f"{Path(path).resolve().name} on {name}", log
    )
    return evaluation


def labelled_split(
    run: Run, data: Path | None, split: str | None, needed: str = "or give --data FILE"
) -> tuple[Split, str]:
    """The labelled texts to evaluate on, and the name of their results: --data FILE, or the run's own split
    (default: test if it has one, else valid). A split with a file of its own is read from that file alone."""
    config = run.config
    fields = config.data.text_field, config.data.label_field
    if data is not None:
        fmt = config.data.format if config.data.dataset is None else "auto"
        return read_split(Path(data), *fields, fmt), f"file-{Path(data).stem}"  # never the name of a split's
    own = {"test": config.data.test, "valid": config.data.valid} if config.data.dataset is None else {}
    choice = split or ("test" if own.get("test") else None)
    if choice is not None and own.get(choice) is not None:
        return read_split(own[choice], *fields, config.data.format), choice
    try:
        corpus = load_corpus(config.data, config.train.seed)
    except RnnclfError as exc:
        raise RnnclfError(f"{exc} (the run's data is needed for its own splits; {needed})") from None
    choice = choice or ("test" if corpus.test is not None else "valid")
    labelled = corpus.test if choice == "test" else corpus.valid
    if labelled is None:
        raise RnnclfError(f"{run.path}: the run's config has no test data; use --split valid or --data FILE")
    return labelled, choice


def encoded_split(predictor: Predictor, labelled: Split) -> tuple[EncodedTexts, np.ndarray]:
    """The labelled texts as token ids of the run's tokenizer, and their targets (label indices)."""
    check_labels(labelled, set(predictor.labels), predictor.run.config.data.label_field)
    index = {label: i for i, label in enumerate(predictor.labels)}
    targets = np.array([index[label] for label in labelled.labels], dtype=np.int64)
    return encode(predictor.tokenizer, labelled.texts), targets


def evaluate_split(predictor: Predictor, labelled: Split) -> dict[str, Any]:
    encoded, targets = encoded_split(predictor, labelled)
    return scores(predictor.encoded_logits(encoded), targets, predictor.labels)


def compare(predictor: Predictor, reference: Predictor, labelled: Split) -> tuple[dict, dict, float]:
    """Both predictors' reports on the same texts (read and tokenized once: they share the run's tokenizer),
    and the share of texts they give the same label."""
    encoded, targets = encoded_split(predictor, labelled)
    logits, reference_logits = predictor.encoded_logits(encoded), reference.encoded_logits(encoded)
    agreement = float(np.mean(logits.argmax(axis=1) == reference_logits.argmax(axis=1)))
    return scores(logits, targets, predictor.labels), scores(reference_logits, targets, predictor.labels), agreement


def check_int8(path: Path | str, workers: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    """int8 against fp32 on the run's validation texts: labels agreeing, accuracy of each. Writes RUN/int8.json
    (what `--int8` then requires) only when int8 is exact enough; otherwise one line, nothing written."""
    path = Path(path)
    fp32 = Predictor.load(path, "cpu", workers)
    labelled, _ = labelled_split(fp32.run, None, "valid", "the int8 check needs the run's validation texts")
    log(f"checking int8 against fp32 on {len(labelled):,} validation texts of {fp32.run.path}")
    int8 = Predictor(fp32.run, "cpu", workers=workers)
    int8.model = quantize_int8(int8.model)  # not Predictor(int8=True), which needs the record made here
    quantized, reference, agreement = compare(int8, fp32, labelled)
    record = {
        "texts": len(labelled),
        "data": labelled.source,
        "agreement": agreement,
        "accuracy_fp32": reference["accuracy"],
        "accuracy_int8": quantized["accuracy"],
        "macro_f1_fp32": reference["macro_f1"],
        "macro_f1_int8": quantized["macro_f1"],
        "min_agreement": MIN_AGREEMENT,
        "max_accuracy_drop": MAX_ACCURACY_DROP,
        "quantized": quantized_layers(fp32.model),
        "weights_sha256": weights_digest(path),
    }
    problem = judge(record["agreement"], record["accuracy_fp32"], record["accuracy_int8"])
    if problem:
        raise RnnclfError(f"{path}: int8 is not exact enough for this run: {problem}; {INT8_FILE} not written")
    write_json(path / INT8_FILE, record)
    return record
