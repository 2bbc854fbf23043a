"""Likely label errors: training rows whose given label the model (scored out of fold, by cross-validation) finds
unlikely, ranked most likely wrong first, by confident learning (Northcutt, Jiang & Chuang 2021).

A row's predicted probabilities come from a model that never trained on it, so a confident disagreement with the
given label is evidence against the label rather than memorisation. The algorithm is cleanlab's default
`cleanlab.filter.find_label_issues` (filter_by="prune_by_noise_rate", min_examples_per_class=1, frac_noise=1),
written again in plain numpy so that rnnclf does not depend on cleanlab; the tests check it against cleanlab:

1. each class's threshold is its mean self-confidence (the probability of the class among rows given it);
2. the confident joint counts (given label, believed true label) over rows at or above some class's threshold
   (several such classes: the most probable), calibrated so that each given label's row sums to its count;
3. each off-diagonal cell (given k, true j) prunes that many rows given k, those with the largest p_j - p_k;
4. a row whose most probable class is its given label is never flagged.

Rows are ranked by a label quality score in [0, 1], lower first: "self_confidence" (p_given) or
"normalized_margin" ((p_given - the largest other probability + 1) / 2).

Multi-label: each label is a one-vs-rest binary problem (probabilities [1 - p, p]) run through the same steps; a row
is flagged when any of its labels is, and those labels are its suspects. Its score is cleanlab's aggregate of the
per-label scores: an exponential moving average with alpha 0.8 over the scores sorted from highest to lowest, so the
lowest counts 0.8, the next 0.16, and so on (a row with one doubtful label scores near that label's score).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnclf.errors import RnnclfError

RANKINGS = ("self_confidence", "normalized_margin")
_SLACK = 1e-6  # cleanlab's tolerance on probabilities (in [0, 1]) and on thresholds (float rounding of a mean)
_MISSING_CLASS_THRESHOLD = 2.0  # above any probability: a class nobody was given is never confidently believed
_LOWEST_THRESHOLD = 2 * _SLACK  # cleanlab's floor on a class's threshold
_TINY = 1e-100  # guards a division by a count that can be zero
_EMA_ALPHA = 0.8  # cleanlab's multi-label aggregate: the weight of each next-lower per-label score


@dataclass
class LabelError:
    """One likely label error. Single-label: given [k], suggested [the most probable other class], suspect [k].
    Multi-label: given the label set, suspect the labels judged wrong (added or missing), suggested the label set
    with the suspects toggled. score: the label quality the ranking sorts by (lower = more likely wrong)."""

    index: int
    score: float
    given: list[int]
    suggested: list[int]
    suspect: list[int]


def find_label_errors(targets: np.ndarray, probs: np.ndarray, rank_by: str = "self_confidence") -> list[LabelError]:
    """Likely label errors, most likely first. Single-label: targets (N,) int class indices, probs (N, C) rows summing
    to 1. Multi-label: targets (N, L) 0/1, probs (N, L) per-label probabilities. Raises RnnclfError (one line) on
    shapes that disagree, probabilities outside [0, 1], or a rank_by not in RANKINGS."""
    targets, probs = _checked(targets, probs, rank_by)
    if targets.ndim == 1:
        flagged = _issue_mask(targets, probs)
        suspects = flagged[:, None]
    else:
        suspects = np.stack([_issue_mask(targets[:, at], _binary(probs[:, at])) for at in range(probs.shape[1])], 1)
        flagged = suspects.any(axis=1)
    rows = np.flatnonzero(flagged)
    scores = label_quality(targets, probs, rank_by)
    rows = rows[np.argsort(scores[rows])]  # cleanlab's order, ties included (the same unstable sort)
    if targets.ndim == 1:
        return [_single_label_error(int(row), float(scores[row]), targets, probs) for row in rows]
    return [_multi_label_error(int(row), float(scores[row]), targets, suspects) for row in rows]


def label_quality(targets: np.ndarray, probs: np.ndarray, rank_by: str = "self_confidence") -> np.ndarray:
    """(N,) every row's label quality score (what the ranking sorts by)."""
    targets, probs = _checked(targets, probs, rank_by)
    if targets.ndim == 1:
        return _class_scores(targets, probs, rank_by)
    per_label = np.stack(
        [_class_scores(targets[:, at], _binary(probs[:, at]), rank_by) for at in range(probs.shape[1])], 1
    )
    return _moving_average(per_label)


def _single_label_error(row: int, score: float, targets: np.ndarray, probs: np.ndarray) -> LabelError:
    given = int(targets[row])
    others = probs[row].copy()
    others[given] = -np.inf
    return LabelError(row, score, [given], [int(np.argmax(others))], [given])


def _multi_label_error(row: int, score: float, targets: np.ndarray, suspects: np.ndarray) -> LabelError:
    given = [int(at) for at in np.flatnonzero(targets[row])]
    suggested = [int(at) for at in np.flatnonzero(targets[row] != suspects[row])]
    return LabelError(row, score, given, suggested, [int(at) for at in np.flatnonzero(suspects[row])])


def _checked(targets: np.ndarray, probs: np.ndarray, rank_by: str) -> tuple[np.ndarray, np.ndarray]:
    """targets as int, probs as float64, or RnnclfError saying what disagrees."""
    if rank_by not in RANKINGS:
        raise RnnclfError(f"rank_by {rank_by!r} is not one of {', '.join(RANKINGS)}")
    targets, probs = np.asarray(targets), np.asarray(probs, dtype=np.float64)
    if targets.ndim not in (1, 2) or probs.ndim != 2 or len(targets) != len(probs):
        raise RnnclfError(
            f"targets {targets.shape} and probabilities {probs.shape} disagree: need (N,) and (N, classes), "
            "or (N, labels) and (N, labels)"
        )
    if targets.ndim == 2 and targets.shape != probs.shape:
        raise RnnclfError(f"multi-label targets {targets.shape} and probabilities {probs.shape} differ in shape")
    if not np.all((probs >= -_SLACK) & (probs <= 1 + _SLACK)):  # NaN fails too
        raise RnnclfError("probabilities must lie in [0, 1] (NaN or values outside found)")
    if not np.all(np.mod(targets, 1) == 0):
        raise RnnclfError("targets must be whole numbers (class indices, or 0 / 1 per label)")
    targets = targets.astype(np.int64)
    if targets.ndim == 2 and not np.isin(targets, (0, 1)).all():
        raise RnnclfError("multi-label targets must be 0 or 1")
    if targets.ndim == 1 and probs.shape[1] < 2:
        raise RnnclfError(f"single-label probabilities need two or more classes, got {probs.shape[1]}")
    if targets.ndim == 1 and len(targets) and (targets.min() < 0 or targets.max() >= probs.shape[1]):
        raise RnnclfError(
            f"targets must be class indices in [0, {probs.shape[1]}), found {targets.min()}..{targets.max()}"
        )
    return targets, probs


def _binary(label_probs: np.ndarray) -> np.ndarray:
    """One label's probabilities as a two-class problem: column 0 'without it', column 1 'with it'."""
    return np.vstack((1 - label_probs, label_probs)).T


def _issue_mask(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(N,) which rows confident learning flags (prune by noise rate), for int labels and (N, C) probabilities."""
    joint = _calibrated(_confident_joint(labels, probs), labels)
    prune = _prune_counts(joint.T)
    flagged = np.zeros(len(labels), dtype=bool)
    for given in range(probs.shape[1]):
        rows = np.flatnonzero(labels == given)
        if len(rows) <= 1:  # cleanlab's min_examples_per_class=1: a class of one row keeps it
            continue
        for true in range(probs.shape[1]):
            if true != given and prune[true, given] > 0:
                margin = probs[rows, true] - probs[rows, given]
                flagged[rows[np.argsort(-margin)[: prune[true, given]]]] = True  # cleanlab's unstable sort
    nudged = probs.copy()
    nudged[np.arange(len(labels)), labels] += _SLACK  # a near tie with the given label counts as agreeing
    return flagged & (nudged.argmax(axis=1) != labels)


def _confident_joint(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(C, C) counts of (given label, believed true label) over rows at or above some class's threshold."""
    classes = probs.shape[1]
    thresholds = np.array(
        [np.mean(probs[:, k][labels == k]) if np.any(labels == k) else _MISSING_CLASS_THRESHOLD for k in range(classes)]
    ).clip(min=_LOWEST_THRESHOLD)
    confident = probs >= thresholds - _SLACK
    several = confident.sum(axis=1) > 1
    believed = np.where(several, probs.argmax(axis=1), confident.argmax(axis=1))
    counted = confident.any(axis=1)  # a row confident of no class is not counted
    # built (true, given) then transposed, as cleanlab does: the memory order decides float sums, and so roundings
    joint = np.bincount(believed[counted] * classes + labels[counted], minlength=classes * classes)
    joint = joint.reshape(classes, classes).T
    np.fill_diagonal(joint, joint.diagonal().clip(min=1))  # every class keeps one row believed correct
    return joint


def _calibrated(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The confident joint scaled so that each given label's row sums to its count, rounded keeping row sums."""
    counts = np.bincount(labels, minlength=len(joint))
    scaled = (joint.T / np.clip(joint.sum(axis=1), _TINY, None) * counts).T  # cleanlab's operation order, bit for bit
    scaled = scaled / np.clip(np.sum(scaled), _TINY, None) * counts.sum()
    return np.array([_round_keeping_sum(row) for row in scaled]).reshape(joint.shape)


def _round_keeping_sum(values: np.ndarray) -> np.ndarray:
    """Whole numbers summing to round(sum(values)): round each, then move the largest remainders by one."""
    rounded = values.round()
    total = np.sum(values).round()
    while abs(np.sum(rounded).round() - total) > _SLACK:
        missing = np.round(total - np.sum(rounded).round())
        step = -1 if missing < 0 else 1
        changes = min(int(abs(missing)), len(values))
        # raising: the largest remainders first; lowering: the smallest (cleanlab's order, ties included)
        rounded[np.argsort(values - rounded)[::-step][:changes]] += step
    return rounded.astype(np.int64)


def _prune_counts(counts: np.ndarray) -> np.ndarray:
    """How many rows to prune per (true j, given k) cell, from the calibrated joint transposed: cleanlab's
    _keep_at_least_n_per_class with n=1. A given label whose diagonal is 0 gets 1, taken evenly from its nonzero
    off-diagonal cells, each then rounded down (frac_noise=1 and its second rounding change nothing)."""
    diagonal = np.maximum(counts.diagonal(), 1)
    missing = diagonal - counts.diagonal()
    cells = np.maximum(np.count_nonzero(counts, axis=0) - 1.0, 1.0)
    pruned = np.maximum(counts - missing / cells, 0)  # per column: each given label k
    np.fill_diagonal(pruned, diagonal)
    return pruned.astype(np.int64)


def _class_scores(labels: np.ndarray, probs: np.ndarray, rank_by: str) -> np.ndarray:
    """(N,) each row's label quality for int labels and (N, C) probabilities."""
    rows = np.arange(len(labels))
    self_confidence = probs[rows, labels]
    if rank_by == "self_confidence":
        return self_confidence
    others = probs.copy()
    others[rows, labels] = -np.inf
    return (self_confidence - others.max(axis=1) + 1) / 2


def _moving_average(scores: np.ndarray) -> np.ndarray:
    """(N,) cleanlab's multi-label aggregate of (N, L) per-label scores: an exponential moving average from the
    highest score to the lowest, each next one weighted _EMA_ALPHA."""
    descending = np.fliplr(np.sort(scores, axis=1)).T
    average = descending[0]
    for score in descending[1:]:
        average = _EMA_ALPHA * score + (1 - _EMA_ALPHA) * average
    return average
