"""Conformal prediction sets: for each text, the labels a run cannot rule out, with a coverage guarantee.

Split conformal prediction (Vovk et al. 2005; Angelopoulos & Bates 2021): a nonconformity score says how unusual a
label is for a text; on the validation split (calibrated probabilities, after the temperature) each text's score of
its true label is stored in conformal.json. At predict time a label joins a text's set when its score is at most the
ceil((n + 1) * coverage)-th smallest stored score, and then the true label is in the set for at least `coverage` of
texts like the validation ones (exchangeable with them). Any coverage can be asked later, because the file keeps the
scores themselves, not one quantile.

Single-label scores: "lac" (least ambiguous sets, Sadinle et al. 2019): 1 - p(label), the smallest sets on average;
"aps" (adaptive prediction sets, Romano et al. 2020, not randomised): the sum of the probabilities of the labels at
least as probable as this one, sets that grow on hard texts. Each class with enough validation texts takes the
quantile of its own scores (class-conditional, "Mondrian": the guarantee holds for the texts of each class), the
others the quantile of all scores.

Multi-label ("recall"): conformal risk control (Angelopoulos et al. 2022) on the false-negative rate: one probability
threshold t, the largest whose validation false-negative rate, inflated for the finite sample, stays within
1 - coverage; a text's set is the labels with p >= t, and on average it misses at most 1 - coverage of its labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnclf.errors import RnnclfError

METHODS = ("lac", "aps")
MULTI_LABEL_METHOD = "recall"
# a class takes its own quantile from 20 validation texts: the fewest for which coverage 0.95 is reachable
# (ceil(21 * 0.95) = 20 <= 20), so a class keeps one kind of quantile across 0.8 / 0.9 / 0.95; below that, one class's
# realised coverage swings by more than +-5 points from one validation split to another
MIN_CLASS_TEXTS = 20
DIGITS = 7  # significant digits of a stored score: half the file, and 5e-8 is far below any quantile's noise
_SUM_SLACK = 1e-6  # an APS score is a sum of probabilities, which may pass 1 by float error
_RANK_SLACK = 1e-9  # (n + 1) * 0.81 is 243.00000000000003 for n = 299: no reason to take the 244th score
DESCRIPTIONS = {
    "lac": "1 - p(true class)",
    "aps": "sum of the probabilities of the classes at least as probable as the true one",
    "recall": "probabilities of each text's true labels",
}


def fit_conformal(probs: np.ndarray, targets: np.ndarray, labels: list[str], method: str = "lac") -> dict[str, Any]:
    """conformal.json's payload from validation probabilities. Single-label: probs (N, C) softmax rows, targets (N,)
    class indices, method "lac" or "aps"; each text's score of its true class, grouped by class and sorted.
    Multi-label: probs (N, L) sigmoid per label, targets (N, L) 0 / 1, method "recall"; for each text with at least
    one true label, the probabilities of its true labels."""
    _check_probabilities(probs, len(labels), "validation probabilities")
    multi_label = targets.ndim == 2
    allowed = (MULTI_LABEL_METHOD,) if multi_label else METHODS
    if method not in allowed:
        kind = "multi-label" if multi_label else "single-label"
        raise RnnclfError(f"conformal method {method!r}: a {kind} run takes {' or '.join(allowed)}")
    _check_targets(targets, probs, "validation")
    payload: dict[str, Any] = {"method": method, "score": DESCRIPTIONS[method], "fitted_on": "valid", "labels": labels}
    if multi_label:
        truth = targets > 0
        true = [_rounded(np.sort(row[hit])) for row, hit in zip(probs, truth, strict=True) if hit.any()]
        return {**payload, "texts": len(true), "true_probabilities": true}
    own = nonconformity(probs, method)[np.arange(len(targets)), targets]
    scores = {label: _rounded(np.sort(own[targets == c])) for c, label in enumerate(labels)}
    return {**payload, "texts": len(targets), "scores": scores}


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{value:.{DIGITS}g}") for value in values]


def nonconformity(probs: np.ndarray, method: str) -> np.ndarray:
    """(N, C) score of every class for every text: "lac" 1 - p; "aps" the sum of the probabilities of the classes
    at least as probable as this one (ties included in full, so equal probabilities get equal scores)."""
    probs = probs.astype(np.float64)
    if method == "lac":
        return 1 - probs
    order = np.argsort(-probs, axis=1, kind="stable")
    ranked = np.take_along_axis(probs, order, axis=1)
    total = np.cumsum(ranked, axis=1)
    columns = np.arange(probs.shape[1])
    # each position reads the running sum at the last member of its run of equal probabilities
    run_ends = np.ones_like(ranked, dtype=bool)
    run_ends[:, :-1] = ranked[:, 1:] != ranked[:, :-1]
    last = np.minimum.accumulate(np.where(run_ends, columns, len(columns))[:, ::-1], axis=1)[:, ::-1]
    scores = np.empty_like(probs)
    np.put_along_axis(scores, order, np.take_along_axis(total, last, axis=1), axis=1)
    return scores


@dataclass
class Conformal:
    """A run's conformal.json, ready to give prediction sets at any coverage."""

    method: str
    multi_label: bool
    labels: list[str]
    texts: int
    class_scores: list[np.ndarray] = field(default_factory=list)  # single-label: each class's sorted scores
    true_probabilities: list[np.ndarray] = field(default_factory=list)  # multi-label: one array per text

    @classmethod
    def from_payload(cls, payload: Any, labels: list[str], multi_label: bool, source: str) -> Conformal:
        """Read conformal.json back; anything malformed raises RnnclfError naming `source`."""
        if not isinstance(payload, dict):
            raise RnnclfError(f"{source}: not a JSON object; the run directory is damaged")
        method = payload.get("method")
        allowed = (MULTI_LABEL_METHOD,) if multi_label else METHODS
        if not isinstance(method, str) or method not in allowed:
            kind = "multi-label" if multi_label else "single-label"
            shown = " or ".join(allowed)
            raise RnnclfError(
                f"{source}: 'method' is {method!r}, a {kind} run's is {shown}; the run directory is damaged"
            )
        if payload.get("labels") != labels:
            raise RnnclfError(f"{source}: its 'labels' are not the run's labels; the run directory is damaged")
        if multi_label:
            groups = _read_groups(payload.get("true_probabilities"), 1.0, source)
            expected = len(groups)
        else:
            groups = _read_class_scores(payload.get("scores"), labels, method, source)
            expected = sum(len(group) for group in groups)
        texts = payload.get("texts")
        if not isinstance(texts, int) or isinstance(texts, bool) or texts != expected:
            raise RnnclfError(f"{source}: 'texts' is {texts!r} but it holds {expected}; the run directory is damaged")
        if multi_label:
            return cls(method, True, list(labels), texts, true_probabilities=groups)
        return cls(method, False, list(labels), texts, class_scores=groups)

    def class_conditional(self, coverage: float) -> np.ndarray:
        """(C,) True for the classes that take the quantile of their own scores at this coverage (single-label)."""
        counts = np.array([len(scores) for scores in self.class_scores], dtype=np.int64)
        return (counts >= MIN_CLASS_TEXTS) & (_rank(counts, coverage) <= counts)

    def thresholds(self, coverage: float) -> np.ndarray:
        """Single-label: (C,) score thresholds q_c, each the ceil((n + 1) * coverage)-th smallest of the class's own
        n scores where it has enough of them, else of the pooled scores of every class without enough (a Mondrian
        group of its own, so each group, and so every text, is covered), +inf where n is too small.
        Multi-label: (1,) the probability threshold t of conformal risk control."""
        check_coverage(coverage, "coverage")
        if self.multi_label:
            return np.array([_recall_threshold(self.true_probabilities, coverage)])
        own = self.class_conditional(coverage)
        # the other classes pool their scores into one group of their own: pooling them with the large classes'
        # (confident, easy) scores would give the small (often hard) classes a quantile too low for them
        rest = [scores for scores, o in zip(self.class_scores, own, strict=True) if not o]
        pooled = _quantile(np.sort(np.concatenate([np.zeros(0), *rest])), coverage)
        return np.array([_quantile(s, coverage) if o else pooled for s, o in zip(self.class_scores, own, strict=True)])

    def scores(self, probs: np.ndarray) -> np.ndarray:
        """(N, C) nonconformity score of every label for every text: what sets() compares with the thresholds
        (multi-label: 1 - p, for display; sets() compares p >= t itself)."""
        _check_probabilities(probs, len(self.labels), "probabilities")
        return 1 - probs.astype(np.float64) if self.multi_label else nonconformity(probs, self.method)

    def sets(self, probs: np.ndarray, coverage: float) -> np.ndarray:
        """(N, C) boolean membership: score <= q_c (single-label; APS: and the most probable class, so a set is never
        empty: a text so sure that even its top class's sum passes the quantile keeps that class), p >= t
        (multi-label)."""
        thresholds = self.thresholds(coverage)
        if self.multi_label:
            _check_probabilities(probs, len(self.labels), "probabilities")
            return probs.astype(np.float64) >= thresholds[0]
        chosen = self.scores(probs) <= thresholds[None, :]
        if self.method == "aps":  # the most probable class always (as MAPIE): an empty set was the surest texts'
            chosen[np.arange(len(chosen)), probs.argmax(axis=1)] = True
        return chosen


def _rank(count: np.ndarray | int, coverage: float) -> np.ndarray:
    """The rank (1-based) of the conformal quantile among `count` scores; above `count` means none is high enough."""
    return np.maximum(np.ceil((np.asarray(count) + 1) * coverage - _RANK_SLACK), 1).astype(np.int64)


def _quantile(sorted_scores: np.ndarray, coverage: float) -> float:
    rank = int(_rank(len(sorted_scores), coverage))
    return math.inf if rank > len(sorted_scores) else float(sorted_scores[rank - 1])


def _recall_threshold(true_probabilities: list[np.ndarray], coverage: float) -> float:
    """The largest t with (n * FNR(t) + 1) / (n + 1) <= 1 - coverage, FNR(t) the mean over the n texts of the share
    of their true labels with p < t; 0 (every label) when no t is that small."""
    n = len(true_probabilities)
    if n == 0:
        return 0.0
    values = np.concatenate(true_probabilities)
    weights = np.concatenate([np.full(len(p), 1 / len(p)) for p in true_probabilities])
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    candidates = np.unique(values)
    # n * FNR(u) for each candidate u: the weight of true labels strictly below it
    missed = np.concatenate([[0.0], np.cumsum(weights)])[np.searchsorted(values, candidates, side="left")]
    budget = (n + 1) * (1 - coverage) - 1
    feasible = np.flatnonzero(missed <= budget + 1e-9)  # missed grows with u, so the feasible ones come first
    return float(candidates[feasible[-1]]) if len(feasible) else 0.0


def check_coverage(value: float, option: str = "--coverage") -> None:
    """Refuse a coverage outside (0, 1), NaN included."""
    if not 0 < value < 1:
        raise RnnclfError(f"{option} {value:g}: coverage is a share of texts, strictly between 0 and 1 (e.g. 0.9)")


def coverage_report(conformal: Conformal, probs: np.ndarray, targets: np.ndarray, coverage: float) -> dict[str, Any]:
    """What eval --coverage shows: the coverage asked and reached, set sizes, empty and full sets (abstentions), and
    per class (single-label) or the false-negative rate (multi-label)."""
    sets = conformal.sets(probs, coverage)
    _check_targets(targets, probs, "test")
    sizes = sets.sum(axis=1)
    report: dict[str, Any] = {
        "coverage": coverage,
        "method": conformal.method,
        "texts": len(sets),
        "mean_set_size": _mean(sizes),
        "empty_sets": _mean(sizes == 0),
        "full_sets": _mean(sizes == sets.shape[1]),
        "abstain": _mean(abstains(sets)),
    }
    if conformal.multi_label:
        truth = targets > 0
        labelled = truth.any(axis=1)
        fnr = (truth & ~sets).sum(axis=1)[labelled] / truth.sum(axis=1)[labelled]
        risk = _mean(fnr)
        return {
            **report,
            "threshold": float(conformal.thresholds(coverage)[0]),
            "labelled_texts": int(labelled.sum()),
            "empirical_coverage": None if risk is None else 1 - risk,
            "recall_risk": risk,
        }
    hit = sets[np.arange(len(targets)), targets]
    own = conformal.class_conditional(coverage)
    return {
        **report,
        "empirical_coverage": _mean(hit),
        "marginal_labels": [label for label, o in zip(conformal.labels, own, strict=True) if not o],
        "per_class": {
            label: {"texts": int((targets == c).sum()), "coverage": _mean(hit[targets == c])}
            for c, label in enumerate(conformal.labels)
        },
    }


def abstains(sets: np.ndarray) -> np.ndarray:
    """(N,) True where a set is empty or holds every label: the prediction reads as "abstain"."""
    sizes = sets.sum(axis=1)
    return (sizes == 0) | (sizes == sets.shape[1])


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None  # no texts, no share


def _check_probabilities(probs: Any, count: int, what: str) -> None:
    if not isinstance(probs, np.ndarray) or probs.ndim != 2 or probs.shape[1] != count:
        shape = getattr(probs, "shape", type(probs).__name__)
        raise RnnclfError(f"conformal sets: {what} of shape (texts, {count}) expected, got {shape}")
    if not np.all((probs >= 0) & (probs <= 1 + _SUM_SLACK)):  # NaN fails too
        raise RnnclfError(f"conformal sets: {what} outside 0 to 1 (or NaN); pass probabilities, not logits")


def _check_targets(targets: np.ndarray, probs: np.ndarray, split: str) -> None:
    if targets.ndim == 2:
        ok = targets.shape == probs.shape and bool(np.all((targets == 0) | (targets == 1)))
    else:
        ok = targets.shape == (len(probs),) and np.issubdtype(targets.dtype, np.integer)
        ok = ok and bool(np.all((targets >= 0) & (targets < probs.shape[1])))
    if not ok:
        raise RnnclfError(f"conformal sets: the {split} targets do not match the probabilities {probs.shape}")


def _read_class_scores(value: Any, labels: list[str], method: str, source: str) -> list[np.ndarray]:
    """Each class's stored scores, sorted; a dict {label: [numbers]} for exactly the run's labels."""
    if not isinstance(value, dict) or list(value) != labels:
        raise RnnclfError(f"{source}: 'scores' should map every label to its list; the run directory is damaged")
    top = 1 + _SUM_SLACK if method == "aps" else 1.0
    return _read_groups([value[label] for label in labels], top, source, allow_empty=True)


def _read_groups(value: Any, top: float, source: str, allow_empty: bool = False) -> list[np.ndarray]:
    """A list of lists of numbers in [0, top], each sorted (a multi-label text has at least one)."""
    if not isinstance(value, list) or not all(isinstance(group, list) for group in value):
        raise RnnclfError(f"{source}: the scores should be lists of numbers; the run directory is damaged")
    groups = []
    for group in value:
        if not (group or allow_empty) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in group):
            raise RnnclfError(f"{source}: a list of scores that is empty or not numbers; the run directory is damaged")
        found = np.sort(np.array(group, dtype=np.float64))
        if not np.all((found >= 0) & (found <= top)):  # NaN fails too
            raise RnnclfError(f"{source}: a score outside 0 to {top:g}; the run directory is damaged")
        groups.append(found)
    return groups
