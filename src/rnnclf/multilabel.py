"""Multi-label metrics and decision thresholds. The metrics are scikit-learn's definitions on indicator
arrays (zero_division=0), checked against it in tests/test_multilabel_metrics.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnclf.calibration import describe_calibration
from rnnclf.errors import RnnclfError


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def multilabel_report(
    probabilities: np.ndarray, targets: np.ndarray, labels: list[str], thresholds: np.ndarray
) -> dict[str, Any]:
    """Everything eval shows for a multi-label model, as plain JSON-able values.

    A label is predicted when its probability is >= its threshold. A text with no true and no predicted
    label has samples-F1 0, as in scikit-learn with zero_division=0.
    """
    thresholds = np.asarray(thresholds, dtype=float)
    shape = (np.shape(probabilities)[0], len(labels)) if np.ndim(probabilities) == 2 else None
    if np.shape(probabilities) != shape or np.shape(targets) != shape or thresholds.shape != (len(labels),):
        raise ValueError("probabilities and targets must be (texts, labels) and thresholds (labels,)")
    predicted = np.asarray(probabilities) >= thresholds[None, :]
    true = np.asarray(targets).astype(bool)
    both = predicted & true
    tp, support, predicted_count = both.sum(axis=0), true.sum(axis=0), predicted.sum(axis=0)
    precision, recall = _divide(tp, predicted_count), _divide(tp, support)
    # 2tp / (2tp + fp + fn): scikit-learn's F1, equal to 2PR / (P + R) where both are defined
    f1 = _divide(2 * tp, support + predicted_count)
    row_tp, row_true, row_predicted = both.sum(axis=1), true.sum(axis=1), predicted.sum(axis=1)
    texts, cells = true.shape[0], true.size
    subset_accuracy = _mean((predicted == true).all(axis=1))
    return {
        "micro_f1": float(_divide(2 * tp.sum(), support.sum() + predicted_count.sum())),
        "macro_f1": _mean(f1),
        "weighted_f1": float(_divide((f1 * support).sum(), support.sum())),
        "samples_f1": _mean(_divide(2 * row_tp, row_true + row_predicted)),
        "micro_precision": float(_divide(tp.sum(), predicted_count.sum())),
        "micro_recall": float(_divide(tp.sum(), support.sum())),
        "macro_precision": _mean(precision),
        "macro_recall": _mean(recall),
        "subset_accuracy": subset_accuracy,
        "accuracy": subset_accuracy,
        "hamming_loss": float((predicted != true).sum() / cells) if cells else 0.0,
        "support": int(texts),
        "label_cardinality": _mean(row_true),
        "predicted_cardinality": _mean(row_predicted),
        "no_label_predicted": int((row_predicted == 0).sum()),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "threshold": float(thresholds[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "multi_label": True,
    }


def format_multilabel_report(report: dict[str, Any], title: str = "") -> str:
    """A plain-text table for people: a summary line, then every label by support, most frequent first."""
    lines = [title] if title else []
    loss = f"  loss {report['loss']:.4f}" if "loss" in report else ""
    lines.append(
        f"micro F1 {report['micro_f1']:.4f}  macro F1 {report['macro_f1']:.4f}  samples F1 {report['samples_f1']:.4f}"
        f"  micro P {report['micro_precision']:.4f}  micro R {report['micro_recall']:.4f}"
        f"  subset accuracy {report['subset_accuracy']:.4f}  Hamming loss {report['hamming_loss']:.4f}"
        f"  ({report['support']} texts){loss}"
    )
    if "calibration" in report:
        lines.append(f"calibration (every text and label): {describe_calibration(report['calibration'])}")
    labels = sorted(report["labels"], key=lambda label: -report["per_class"][label]["support"])
    width = max(12, *(len(label) for label in labels)) if labels else 12
    lines.append(f"{'label':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8} {'threshold':>9}")
    for label in labels:
        row = report["per_class"][label]
        lines.append(
            f"{label:<{width}} {row['precision']:>9.4f} {row['recall']:>9.4f} {row['f1']:>9.4f}"
            f" {row['support']:>8d} {row['threshold']:>9.4f}"
        )
    return "\n".join(lines)


def _best_threshold(probabilities: np.ndarray, targets: np.ndarray, floor: float) -> float:
    """The threshold >= floor that maximises F1 of `probabilities >= threshold`, exactly; ties: closest to 0.5."""
    if probabilities.size == 0:
        return max(floor, 0.5)
    order = np.argsort(-probabilities)  # ties need no order: only cuts between distinct values count
    scores, positives = probabilities[order], targets[order].astype(np.int64)
    # predicting the top k texts: every k where the scores are cut between two distinct values
    cut = np.flatnonzero(scores[:-1] > scores[1:]) + 1
    candidates = (scores[cut - 1] + scores[cut]) / 2
    # two adjacent floats have no float between them: then cut at the higher one
    candidates = np.where(candidates > scores[cut], candidates, scores[cut - 1])
    keep = candidates > floor
    predicted = np.concatenate([cut[keep], [np.count_nonzero(scores >= floor)]])
    candidates = np.concatenate([candidates[keep], [floor]])
    above = (scores[0] + 1.0) / 2
    if scores[0] < above and above > floor:
        # just above the maximum: predict nothing
        predicted, candidates = np.append(predicted, 0), np.append(candidates, above)
    true_positives = np.concatenate([[0], np.cumsum(positives)])[predicted]
    f1 = _divide(2 * true_positives, predicted + positives.sum())
    best = np.flatnonzero(f1 == f1.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def tune_thresholds(
    probabilities: np.ndarray, targets: np.ndarray, labels: list[str], min_support: int = 3, floor: float = 0.05
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per label, the threshold (>= floor) that maximises its F1 on these data; labels with fewer than
    `min_support` positives get one global threshold that maximises micro-F1 over all labels."""
    if not 0.0 <= floor <= 1.0:
        raise RnnclfError(f"threshold floor must be in [0, 1], got {floor}")
    probabilities = np.asarray(probabilities, dtype=float)
    targets = np.asarray(targets).astype(bool)
    global_threshold = _best_threshold(probabilities.ravel(), targets.ravel(), floor)
    # one label's scores side by side in memory: sorting a strided column is several times slower
    probabilities, targets = np.ascontiguousarray(probabilities.T), np.ascontiguousarray(targets.T)
    thresholds = np.full(len(labels), global_threshold)
    tuned, fallback = [], []
    for i, label in enumerate(labels):
        if targets[i].sum() < min_support:
            fallback.append(label)
            continue
        thresholds[i] = _best_threshold(probabilities[i], targets[i], floor)
        tuned.append(label)
    info = {
        "method": "per_label_f1",
        "global": global_threshold,
        "floor": float(floor),
        "min_support": int(min_support),
        "tuned": tuned,
        "fallback": fallback,
    }
    return thresholds, info


def thresholds_file_payload(labels: list[str], thresholds: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
    """What thresholds.json holds: {"thresholds": {label: value}, **info}."""
    return {"thresholds": {label: float(value) for label, value in zip(labels, thresholds, strict=True)}, **info}


def read_thresholds(payload: Any, labels: list[str], source: str) -> np.ndarray:
    """The thresholds in `labels` order from a thresholds.json payload; labels the model lacks are ignored."""
    table = payload.get("thresholds") if isinstance(payload, dict) else None
    if not isinstance(table, dict):
        raise RnnclfError(f'{source}: expected an object with a "thresholds" mapping of label to threshold')
    missing = [label for label in labels if label not in table]
    if missing:
        raise RnnclfError(f"{source}: no threshold for label(s) {', '.join(map(repr, missing[:5]))}")
    values = []
    for label in labels:
        value = table[label]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise RnnclfError(f"{source}: threshold for label {label!r} must be a number in [0, 1], got {value!r}")
        values.append(float(value))
    return np.array(values, dtype=float)


def pos_weight(targets: np.ndarray, cap: float = 100.0) -> np.ndarray:
    """Per label negatives / positives, for BCEWithLogitsLoss, at most `cap`.

    A label with no positives or no negatives in `targets` gets 1.0: the ratio is 0 or infinite there, and
    neither says anything useful (a weight of 0 would stop an always-true label from learning at all).
    """
    targets = np.asarray(targets).astype(bool)
    positives = targets.sum(axis=0)
    negatives = targets.shape[0] - positives
    ratio = _divide(negatives, positives)
    weights = np.where((positives > 0) & (negatives > 0), ratio, 1.0)
    return np.minimum(weights, cap)


def choose_thresholds(
    probabilities: np.ndarray,
    targets: np.ndarray,
    labels: list[str],
    how: str = "per_label",
    min_support: int = 3,
    floor: float = 0.05,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The decision thresholds train.thresholds asks for, chosen on validation data, and how they were chosen
    (with a one-line `description`): per_label (tune_thresholds), global (one value, best micro-F1), fixed (0.5),
    or auto (the one of those three that generalises best within the validation data, see choose_rule)."""
    if how == "auto":
        chosen, held_out = choose_rule(probabilities, targets, labels, min_support, floor)
        thresholds, info = choose_thresholds(probabilities, targets, labels, chosen, min_support, floor)
        scores = ", ".join(f"{rule} {value:.4f}" for rule, value in held_out.items())
        info = info | {"chosen_by": "auto", "held_out_micro_f1": held_out}
        info["description"] = (
            f"auto chose {chosen} ({scores}: micro F1 on held-out validation halves): " + (info["description"])
        )
        return thresholds, info
    if how == "fixed":
        return np.full(len(labels), 0.5), {
            "method": "fixed",
            "description": "0.5 for every label",
        }
    thresholds, info = tune_thresholds(probabilities, targets, labels, min_support, floor)
    if how == "global":
        info = {"method": "global_micro_f1", "global": info["global"], "floor": info["floor"]}
        thresholds = np.full(len(labels), info["global"])
        info["description"] = f"{info['global']:.3f} for every label (best validation micro F1)"
        return thresholds, info
    info["description"] = (
        f"{len(info['tuned'])} labels tuned for their validation F1 (from {thresholds.min():.2f} to "
        f"{thresholds.max():.2f}), {len(info['fallback'])} with fewer than {min_support} validation positives at "
        f"the global {info['global']:.3f}"
    )
    return thresholds, info


AUTO_RULES = ("fixed", "global", "per_label")  # simplest first: a tie keeps the simpler rule
AUTO_HALVINGS = 20


def choose_rule(
    probabilities: np.ndarray, targets: np.ndarray, labels: list[str], min_support: int, floor: float
) -> tuple[str, dict[str, float]]:
    """Which threshold rule to trust, decided within the validation data: each rule is fitted on a random half
    and scored (micro F1) on the other half, over AUTO_HALVINGS seeded halvings; the best mean wins. Tuning on
    a few hundred texts can fit noise (on reuters21578 it did: 0.5 beat per-label thresholds on held-out data)."""
    rng = np.random.default_rng(0)
    totals = dict.fromkeys(AUTO_RULES, 0.0)
    for _ in range(AUTO_HALVINGS):
        half = rng.permutation(len(targets)) < len(targets) // 2
        for rule in AUTO_RULES:
            # half the texts: half the positives a label needs to be tuned
            cut, _ = choose_thresholds(
                probabilities[half], targets[half], labels, rule, max(1, min_support // 2), floor
            )
            score = multilabel_report(probabilities[~half], targets[~half], labels, cut)["micro_f1"]
            totals[rule] += score / AUTO_HALVINGS
    best = max(AUTO_RULES, key=lambda rule: (round(totals[rule], 6), -AUTO_RULES.index(rule)))
    return best, {rule: round(value, 6) for rule, value in totals.items()}


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """A multi-label report's summary figures, without the per-label table."""
    keys = ("micro_f1", "macro_f1", "samples_f1", "micro_precision", "micro_recall", "accuracy", "hamming_loss")
    return {key: report[key] for key in keys}


def describe_label_sets(targets: dict[str, np.ndarray]) -> str:
    """For the training log: labels per training text, and texts with no label in each split."""
    none = {name: int((rows.sum(axis=1) == 0).sum()) for name, rows in targets.items()}
    counts = ", ".join(f"{count:,} in {name}" for name, count in none.items() if count)
    return f"multi-label; {targets['train'].sum(axis=1).mean():.2f} labels per training text" + (
        f"; texts with no label: {counts}" if counts else ""
    )


def label_prior_logits(targets: np.ndarray, smallest: float = 1e-4) -> np.ndarray:
    """The logit of each label's share of texts (kept within [smallest, 1 - smallest]): the output bias at which
    an untrained model predicts each label's frequency."""
    share = np.clip(np.asarray(targets, dtype=np.float64).mean(axis=0), smallest, 1 - smallest)
    return np.log(share / (1 - share)).astype(np.float32)
