"""Multi-label decision thresholds: per label, global or fixed, chosen on validation (auto: the rule that
generalises best within it); thresholds.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnclf.errors import RnnclfError
from rnnclf.evaluation.multilabel import multilabel_report, safe_divide


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
    f1 = safe_divide(2 * true_positives, predicted + positives.sum())
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
