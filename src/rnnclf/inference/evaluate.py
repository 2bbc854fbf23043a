"""Evaluation of a run on labelled data: its own valid / test split or any labelled file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.data.corpus import check_labels, data_fields, label_format, label_targets, load_corpus
from rnnclf.data.readers import Split, read_split
from rnnclf.data.tokenizer import EncodedTexts
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate, calibration_report
from rnnclf.evaluation.conformal import check_coverage, coverage_report
from rnnclf.evaluation.scores import probabilities, scores
from rnnclf.files import METRICS, write_json
from rnnclf.inference.ensemble import load_predictor
from rnnclf.inference.predictor import Predictor
from rnnclf.inference.trust import require_trust
from rnnclf.runs.directory import Run


def evaluate_run(
    path: Path | str,
    data: Path | None = None,
    split: str | None = None,
    device: str = "auto",
    log: Callable[[str], None] = print,
    workers: int = 1,
    int8: bool = False,
    threshold: float | None = None,
    coverage: float | None = None,
) -> tuple[dict[str, Any], Path]:
    """Metrics of a run on a labelled file, or on its own valid / test split; with `int8`, of its int8 model,
    with the fp32 model's accuracy and macro F1 beside them (`fp32`) and the share of labels they agree on.

    Written to RUN/eval/<name>.json (<name>-int8.json), whose path is returned with the metrics (the pictures of
    an evaluation are views.plots.save_evaluation_figures'). Probabilities are divided by the run's temperature; the
    calibration figures show them before it too. A multi-label run decides at its thresholds, or at `threshold`
    for every label. With `coverage`, the prediction sets' empirical coverage and sizes too ("prediction_sets").
    """
    if coverage is not None:
        check_coverage(coverage)
        if int8:
            raise RnnclfError("--coverage scores the fp32 model's prediction sets; drop --int8")
    predictor = load_predictor(path, device, workers, int8=int8)
    trust = require_trust(Path(path), predictor.labels, predictor.multi_label, coverage) if coverage else None
    predictor.set_threshold(threshold)
    labelled, name = labelled_split(predictor.run, data, split)
    if name == "valid" and not getattr(predictor.run, "shared_valid", True):
        raise RnnclfError(
            f"{path}: an ensemble whose members trained on each other's validation texts (each carved its own); "
            "use --split test or --data FILE"
        )
    if int8:
        fp32 = Predictor(predictor.run, "cpu", workers=workers)
        fp32.set_threshold(threshold)
        evaluation, reference, agreement = compare(predictor, fp32, labelled)
        keys = ("micro_f1",) if predictor.multi_label else ()
        evaluation["fp32"] = {key: reference[key] for key in (*keys, "accuracy", "macro_f1", "weighted_f1", "loss")}
        evaluation["agreement"] = agreement
        name += "-int8"
    else:
        encoded, targets = encoded_split(predictor, labelled)
        evaluation, calibrated = report_with_calibration(predictor, encoded, targets)
        if trust is not None:
            evaluation["prediction_sets"] = prediction_sets(trust, calibrated, targets, coverage, labelled, log)
            name += f"-coverage{coverage:g}"
    if threshold is not None:  # beside the results at the run's own thresholds, not over them
        name += f"-threshold{threshold:g}"
    baseline = recorded_baseline(Path(path), name.split("-")[0])
    if baseline is not None:
        evaluation["linear_baseline"] = baseline
    evaluation["data"] = labelled.source
    written = Path(path) / "eval" / f"{name}.json"
    write_json(written, evaluation)
    log(f"wrote {written}")
    return evaluation, written


def recorded_baseline(path: Path, split: str) -> dict[str, Any] | None:
    """The linear baseline's figures on the run's own valid or test split, as training recorded them in
    metrics.json (recipes/baseline.py); None for other data, or a run without them."""
    try:
        summary = json.loads((path / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    baseline = summary.get("linear_baseline") if isinstance(summary, dict) else None
    return baseline.get(split) if isinstance(baseline, dict) and split in ("valid", "test") else None


def labelled_split(
    run: Run, data: Path | None, split: str | None, needed: str = "or give --data FILE"
) -> tuple[Split, str]:
    """The labelled texts to evaluate on, and the name of their results: --data FILE, or the run's own split
    (default: test if it has one, else valid). A split with a file of its own is read from that file alone."""
    config = run.config
    fmt, *fields = data_fields(config.data)
    labels = label_format(config.data)
    if data is not None:
        fmt = config.data.format if config.data.dataset is None else "auto"
        # never the name of a split's results
        return read_split(Path(data), *fields, fmt, label_format=labels), f"file-{Path(data).stem}"
    own = {"test": config.data.test, "valid": config.data.valid} if config.data.dataset is None else {}
    if config.data.folds:  # a cross-validation fold's test split is its held-out fold, not the test file
        own["test"] = None
    choice = split or ("test" if own.get("test") else None)
    if choice is not None and own.get(choice) is not None:
        return read_split(own[choice], *fields, config.data.format, label_format=labels), choice
    try:
        corpus = load_corpus(config.data, config.train.seed, run.labels)
    except RnnclfError as exc:
        raise RnnclfError(f"{exc} (the run's data is needed for its own splits; {needed})") from None
    choice = choice or ("test" if corpus.test is not None else "valid")
    labelled = corpus.test if choice == "test" else corpus.valid
    if labelled is None:
        raise RnnclfError(f"{run.path}: the run's config has no test data; use --split valid or --data FILE")
    return labelled, choice


def encoded_split(predictor: Predictor, labelled: Split) -> tuple[EncodedTexts, np.ndarray]:
    """The labelled texts as token ids of the run's tokenizer, and their targets (label indices, or 0 / 1 rows)."""
    check_labels(labelled, set(predictor.labels), predictor.run.config.data.label_field)
    targets = label_targets(labelled.labels, predictor.labels, predictor.multi_label)
    return predictor.encode(labelled.texts), targets


def report_with_calibration(
    predictor: Predictor, encoded: EncodedTexts, targets: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    """The report at the run's temperature and thresholds, with its calibration before and after the temperature;
    and the calibrated logits."""
    logits = predictor.model_logits(encoded)
    calibrated = calibrate(logits, predictor.temperature)
    report = scores(calibrated, targets, predictor.labels, predictor.thresholds)
    report["calibration"] = calibration_report(logits, predictor.temperature, targets, predictor.labels)
    return report, calibrated


def compare(predictor: Predictor, reference: Predictor, labelled: Split) -> tuple[dict, dict, float]:
    """Both predictors' reports on the same texts (read and tokenized once: they share the run's tokenizer),
    and the share of texts they give the same label (multi-label: the same set of labels)."""
    encoded, targets = encoded_split(predictor, labelled)
    report, logits = report_with_calibration(predictor, encoded, targets)
    reference_report, reference_logits = report_with_calibration(reference, encoded, targets)
    if predictor.multi_label:
        cut = predictor.thresholds  # the same for both: the reference was given the same --threshold
        decided = probabilities(logits, True) >= cut, probabilities(reference_logits, True) >= cut
        agreement = float(np.mean((decided[0] == decided[1]).all(axis=1)))
    else:
        agreement = float(np.mean(logits.argmax(axis=1) == reference_logits.argmax(axis=1)))
    return report, reference_report, agreement


def prediction_sets(
    trust: Any, calibrated: np.ndarray, targets: np.ndarray, coverage: float, labelled: Split, log: Callable
) -> dict[str, Any]:
    """eval --coverage's figures; a warning when the sets were fitted on these very texts."""
    if _same_file(trust.record.get("fitted_on"), labelled.source):
        log(
            f"rnnclf: warning: the prediction sets were fitted on {labelled.source} (rnnclf calibrate --data): their "
            "coverage on the same texts is no test of them"
        )
    multi_label = targets.ndim == 2
    return coverage_report(trust.conformal, probabilities(calibrated, multi_label), targets, coverage)


def _same_file(fitted_on: object, source: str) -> bool:
    """Whether conformal.json was fitted on the file being evaluated."""
    if not isinstance(fitted_on, str) or fitted_on == "valid":
        return False
    return Path(fitted_on).resolve() == Path(source).resolve()
