"""The end of a classifier's training: the best weights on valid (and test), the temperature fitted on valid
(calibration.json), multi-label thresholds chosen on the calibrated validation probabilities (thresholds.json),
and metrics.json's summary."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from rnnclf import files
from rnnclf.evaluation.calibration import calibrate, calibration_report, describe_calibration, fit_calibration
from rnnclf.evaluation.multilabel import headline
from rnnclf.evaluation.scores import probabilities
from rnnclf.evaluation.thresholds import AUTO_RULES, choose_thresholds, thresholds_file_payload
from rnnclf.inference.trust import fit_trust, unknown_shares
from rnnclf.recipes.baseline import linear_baseline, say_if_behind
from rnnclf.runs.tensors import load_tensors
from rnnclf.training import distributed
from rnnclf.training.loop import Loop
from rnnclf.views.tables import describe_baseline


class Classify(Protocol):
    """What this module reads of the classify recipe (recipes/classify.py), and the two attributes it sets."""

    loop: Loop
    data: Any  # data.token_cache.Prepared
    labels: list[str]
    multi_label: bool
    best_valid_logits: np.ndarray | None
    threshold_info: dict[str, Any]
    rule_thresholds: dict[str, np.ndarray]
    baseline: dict[str, Any] | None

    def logits(self, split: str) -> np.ndarray: ...

    def scores(
        self, logits: np.ndarray, split: str, thresholds: np.ndarray | None, temperature: np.ndarray | None
    ) -> dict[str, Any]: ...


def final_reports(recipe: Classify) -> tuple[dict[str, Any], np.ndarray | None]:
    """Each split's report of the best weights (valid, and test unless a trial), and the multi-label thresholds."""
    loop = recipe.loop
    splits = ["valid"] + (["test"] if "test" in recipe.data.encoded and not loop.trial else [])
    known = {"valid": recipe.best_valid_logits} if recipe.best_valid_logits is not None else {}
    if any(split not in known for split in splits):  # the best weights, exactly as saved
        loop.model.load_state_dict(load_tensors(loop.run_dir / files.WEIGHTS))
    reports: dict[str, Any] = {}
    thresholds = temperature = None
    for split in splits:
        logits = known[split] if split in known else recipe.logits(split)
        if split == "valid":  # the temperature first: thresholds are chosen on calibrated probabilities
            temperature = fitted_temperature(recipe, logits)
            thresholds = chosen_thresholds(recipe, calibrate(logits, temperature)) if recipe.multi_label else None
            fitted_trust(recipe, calibrate(logits, temperature))
        reports[split] = recipe.scores(logits, split, thresholds, temperature)
        figures = calibration_report(logits, temperature, recipe.data.targets[split], recipe.labels)
        reports[split]["calibration"] = {k: v for k, v in figures.items() if not k.startswith("reliability")}
        if thresholds is not None:  # beside them, each threshold rule's figures (fixed: one global 0.5)
            reports[split]["by_rule"] = {
                rule: headline(recipe.scores(logits, split, cut, temperature))
                for rule, cut in recipe.rule_thresholds.items()
            }
            reports[split]["at_0.5"] = reports[split]["by_rule"]["fixed"]
    recipe.baseline = linear_baseline(recipe) if loop.group.main else None
    distributed.barrier(loop.group)  # the other ranks wait for rank 0's baseline: all leave together
    say_if_behind(recipe, reports["valid"], recipe.baseline)
    if reports.get("test") is not None:
        beside = describe_baseline(recipe.baseline, "test", "micro_f1" if recipe.multi_label else "accuracy")
        loop.log(f"test (best epoch {loop.progress.best_epoch}): {describe_test(reports['test'], beside)}")
    return reports, thresholds


def summary_of(
    recipe: Classify, history: list[dict[str, Any]], reports: dict[str, Any], thresholds: np.ndarray | None
) -> dict[str, Any]:
    loop = recipe.loop
    common = loop.history_summary(history)
    return {
        **loop.progress.summary,
        "best_epoch": common["best_epoch"],
        "epochs_run": common["epochs_run"],
        "metric": loop.tc.metric,
        "train_seconds": common["train_seconds"],
        "tokens_per_s": common["tokens_per_s"],
        **({"multi_label": True, "thresholds": recipe.threshold_info} if thresholds is not None else {}),
        "valid": reports["valid"],
        "test": reports.get("test"),
        **({"linear_baseline": recipe.baseline} if recipe.baseline is not None else {}),
    }


def fitted_temperature(recipe: Classify, valid_logits: np.ndarray) -> np.ndarray | None:
    """The temperature (train.calibration), fitted on the best weights' validation logits, written to
    calibration.json; None when the config asks for none."""
    loop = recipe.loop
    if loop.tc.calibration == "none":
        return None
    targets = recipe.data.targets["valid"]
    temperature, payload = fit_calibration(valid_logits, targets, recipe.labels, loop.tc.threshold_min_support)
    if loop.group.main:
        files.write_json(loop.run_dir / files.CALIBRATION, payload)
    figures = payload["valid"] | {"temperature": payload["temperature"]}
    loop.log(f"calibration on valid: {describe_calibration(figures)}, written to {files.CALIBRATION}")
    if "kept_at_1" in payload:
        loop.log(f"rnnclf: warning: calibration: {payload['kept_at_1']}")
    return temperature


def fitted_trust(recipe: Classify, valid_logits: np.ndarray) -> None:
    """Prediction sets (train.conformal) and the out-of-domain check's reference, fitted on the best weights'
    calibrated validation probabilities, written to conformal.json."""
    loop = recipe.loop
    probs = probabilities(valid_logits, recipe.multi_label)
    shares = unknown_shares(recipe.data.encoded["valid"])
    payload = fit_trust(probs, recipe.data.targets["valid"], recipe.labels, loop.tc.conformal, shares, "valid")
    if loop.group.main:
        files.write_json(loop.run_dir / files.CONFORMAL, payload)
    loop.log(
        f"prediction sets: {payload['method']} scores of {payload['texts']:,} validation texts, written to {files.CONFORMAL}"
    )


def chosen_thresholds(recipe: Classify, valid_logits: np.ndarray) -> np.ndarray:
    """Multi-label: each label's decision threshold, chosen on the validation split (train.thresholds) from its
    calibrated logits, written to thresholds.json."""
    loop, tc = recipe.loop, recipe.loop.tc
    valid = probabilities(valid_logits, True), recipe.data.targets["valid"], recipe.labels
    thresholds, info = choose_thresholds(*valid, tc.thresholds, tc.threshold_min_support, tc.threshold_floor)
    recipe.threshold_info = info
    recipe.rule_thresholds = {
        rule: choose_thresholds(*valid, rule, tc.threshold_min_support, tc.threshold_floor)[0] for rule in AUTO_RULES
    }
    if loop.group.main:
        files.write_json(loop.run_dir / files.THRESHOLDS, thresholds_file_payload(recipe.labels, thresholds, info))
    loop.log(f"thresholds: {info['description']}, written to {loop.run_dir / files.THRESHOLDS}")
    return thresholds


def describe_test(test: dict[str, Any], beside: str = "") -> str:
    """The test line's figures; `beside`: the linear baseline's headline, after the run's own."""
    if "micro_f1" not in test:
        return (
            f"accuracy {test['accuracy']:.4f}{beside}, macro F1 {test['macro_f1']:.4f}, weighted F1 {test['weighted_f1']:.4f}"
            f"; {describe_calibration(test['calibration'])}"
        )
    plain = test.get("at_0.5")
    at_half = f" (at 0.5: {plain['micro_f1']:.4f} / {plain['macro_f1']:.4f})" if plain else ""
    return (
        f"micro F1 {test['micro_f1']:.4f}{beside}, macro F1 {test['macro_f1']:.4f}{at_half}, subset accuracy "
        f"{test['accuracy']:.4f}; {describe_calibration(test['calibration'])}"
    )
