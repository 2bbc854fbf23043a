"""Calibrated probabilities: a temperature fitted on the validation split, and how far probabilities are from
the frequencies they claim (expected calibration error, Brier score, the bins of a reliability diagram).

A temperature T divides the logits before the softmax (multi-label: before each label's sigmoid, one T per label).
It never changes which class is most probable; it makes a run's 0.9 mean "right 9 times in 10" on data like the
validation split. Fitted by minimising the validation negative log-likelihood, which is convex in 1/T, so a
bounded golden-section search finds its minimum to 1e-12 (no optimiser settings, no randomness).

A validation split with no error to learn from (every text right, and confidently) has no minimum: the loss keeps
falling as T falls, and probabilities would all be 0 or 1. A fit that reaches a bound of [LOWEST, HIGHEST] is
therefore not used: a label takes the temperature fitted on all labels together, and a run whose fit (or whose
shared fit) reaches a bound keeps T = 1, with the reason in calibration.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnclf.errors import RnnclfError

BINS = 15
LOWEST, HIGHEST = 0.05, 20.0  # the search's bounds: a fit at one is not a fit (see above)
_SEARCH_STEPS = 60  # golden-section steps: the bracket shrinks by 0.618 each, to 1e-12 of its width


@dataclass
class TemperatureFit:
    """A fitted temperature: shape (1,) single-label, (labels,) multi-label; the labels that took the shared one
    (too few validation positives or negatives, or their own fit reached a bound); and whether the fit (single-label)
    or the shared fit (multi-label) reached a bound, so that T = 1 was kept instead."""

    temperature: np.ndarray
    shared_labels: list[int] = field(default_factory=list)
    kept_at_one: bool = False


def fit_temperature(logits: np.ndarray, targets: np.ndarray, min_support: int = 3) -> TemperatureFit:
    """The temperature minimising the validation NLL of single-label logits (targets: class indices) or
    multi-label ones (targets: 0 / 1 rows, one temperature per label; a label with fewer than `min_support`
    validation positives or negatives takes the temperature fitted on all labels together)."""
    logits = logits.astype(np.float64)
    if targets.ndim == 1:
        fitted = _golden(lambda beta: _softmax_nll(logits, targets, beta), 1)
        return TemperatureFit(np.where(_inside(fitted), fitted, 1.0), kept_at_one=not _inside(fitted)[0])
    shared = _golden(lambda beta: _sigmoid_nll(logits, targets, beta).mean(keepdims=True), 1)
    kept_at_one = not _inside(shared)[0]
    per_label = _golden(lambda beta: _sigmoid_nll(logits, targets, beta), logits.shape[1])
    positives = targets.sum(axis=0)
    takes_shared = (positives < min_support) | (len(targets) - positives < min_support) | ~_inside(per_label)
    temperature = np.where(takes_shared, 1.0 if kept_at_one else shared[0], per_label)
    return TemperatureFit(temperature, [int(i) for i in np.flatnonzero(takes_shared)], kept_at_one)


def _inside(temperature: np.ndarray) -> np.ndarray:
    """Which fitted temperatures lie inside the search's bounds (a fit at a bound found no minimum)."""
    return (temperature > LOWEST * 1.001) & (temperature < HIGHEST / 1.001)


def _golden(loss: Callable[[np.ndarray], np.ndarray], count: int) -> np.ndarray:
    """`count` temperatures in [LOWEST, HIGHEST], each minimising its entry of loss(beta) over beta = 1 / T (a
    convex function of beta): golden-section search, all entries at once."""
    ratio = (np.sqrt(5) - 1) / 2
    low, high = np.full(count, 1 / HIGHEST), np.full(count, 1 / LOWEST)
    c, d = high - ratio * (high - low), low + ratio * (high - low)
    loss_c, loss_d = loss(c), loss(d)
    for _ in range(_SEARCH_STEPS):
        left = loss_c < loss_d  # the minimum lies in [low, d]
        high, low = np.where(left, d, high), np.where(left, low, c)
        new_c = np.where(left, high - ratio * (high - low), d)
        new_d = np.where(left, c, low + ratio * (high - low))
        probed = loss(np.where(left, new_c, new_d))
        loss_c, loss_d = np.where(left, probed, loss_d), np.where(left, loss_c, probed)
        c, d = new_c, new_d
    return 1 / ((low + high) / 2)


def _softmax_nll(logits: np.ndarray, targets: np.ndarray, beta: np.ndarray) -> np.ndarray:
    scaled = logits * beta[0]
    top = scaled.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1))
    return np.array([np.mean(log_z - scaled[np.arange(len(targets)), targets])])


def _sigmoid_nll(logits: np.ndarray, targets: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Each label's mean binary cross-entropy at logits * beta (beta per label)."""
    scaled = logits * beta[None, :]
    return (np.logaddexp(0, scaled) - targets * scaled).mean(axis=0)


def probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Softmax over classes, or a sigmoid per label (float64)."""
    logits = logits.astype(np.float64)
    if multi_label:
        return 0.5 * (1 + np.tanh(logits / 2))  # the sigmoid, without overflow
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, targets: np.ndarray) -> float:
    """The mean cross-entropy (multi-label: binary cross-entropy over every text and label) of logits."""
    one = np.ones(1 if targets.ndim == 1 else logits.shape[1])
    nll = _softmax_nll if targets.ndim == 1 else _sigmoid_nll
    return float(np.mean(nll(logits.astype(np.float64), targets, one)))


def calibrate(logits: np.ndarray, temperature: np.ndarray | None) -> np.ndarray:
    """Logits divided by the run's temperature (unchanged for a run without one)."""
    return logits if temperature is None else (logits / temperature).astype(logits.dtype)


def reliability(probabilities: np.ndarray, targets: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Expected calibration error over `bins` equal-width bins of confidence, the Brier score, and each bin's
    count, mean confidence and observed frequency.

    Single-label: the confidence is the top class's probability and the outcome whether that class is right
    (top-label calibration); the Brier score sums the squared error over all classes (0 to 2). Multi-label: every
    (text, label) pair's probability against whether the label applies; the Brier score is their mean squared error.
    """
    if targets.ndim == 1:
        confidence = probabilities.max(axis=1)
        outcome = (probabilities.argmax(axis=1) == targets).astype(np.float64)
        truth = np.zeros_like(probabilities, dtype=np.float64)
        truth[np.arange(len(targets)), targets] = 1
        brier = float(np.mean(np.sum((probabilities - truth) ** 2, axis=1)))
    else:
        confidence, outcome = probabilities.ravel(), targets.ravel().astype(np.float64)
        brier = float(np.mean((confidence - outcome) ** 2))
    where = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)  # bin i holds (i/b, (i+1)/b]
    count = np.bincount(where, minlength=bins)
    mean_confidence = np.bincount(where, confidence, bins) / np.maximum(count, 1)
    frequency = np.bincount(where, outcome, bins) / np.maximum(count, 1)
    ece = float(np.sum(count * np.abs(frequency - mean_confidence)) / max(len(confidence), 1))
    return {
        "ece": ece,
        "brier": brier,
        "bins": [
            {
                "upper": (i + 1) / bins,
                "count": int(count[i]),
                "confidence": float(mean_confidence[i]) if count[i] else None,  # an empty bin has neither
                "frequency": float(frequency[i]) if count[i] else None,
            }
            for i in range(bins)
        ],
    }


def calibration_report(
    logits: np.ndarray, temperature: np.ndarray | None, targets: np.ndarray, labels: list[str]
) -> dict[str, Any]:
    """ECE and Brier score before and after the temperature, with the reliability bins of both: what eval shows."""
    multi_label = targets.ndim == 2
    before = reliability(probabilities(logits, multi_label), targets)
    after = reliability(probabilities(calibrate(logits, temperature), multi_label), targets)
    return {
        "temperature": describe_temperature(temperature, labels, multi_label),
        "bins_count": BINS,
        "ece": after["ece"],
        "ece_before": before["ece"],
        "brier": after["brier"],
        "brier_before": before["brier"],
        "loss_before": negative_log_likelihood(logits, targets),
        "reliability": after["bins"],
        "reliability_before": before["bins"],
    }


def describe_temperature(temperature: np.ndarray | None, labels: list[str], multi_label: bool) -> Any:
    """The temperature as JSON: null (none fitted), a number, or {label: number}."""
    if temperature is None:
        return None
    if multi_label:
        return {label: float(value) for label, value in zip(labels, temperature, strict=True)}
    return float(temperature[0])


def read_temperature(payload: Any, labels: list[str], multi_label: bool, source: str) -> np.ndarray:
    """The temperature of a calibration.json: one number, or one per label for a multi-label run, each within the
    search's bounds."""
    value = payload.get("temperature") if isinstance(payload, dict) else None
    if multi_label and isinstance(value, dict) and set(value) == set(labels):
        values = [value[label] for label in labels]
    elif not multi_label:
        values = [value]
    else:
        values = []
    if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        shape = "{label: number} for every label" if multi_label else "a number"
        raise RnnclfError(f"{source}: 'temperature' should be {shape}; the run directory is damaged")
    found = np.array(values, dtype=np.float64)
    if not np.all((found >= LOWEST * 0.999) & (found <= HIGHEST * 1.001)):  # NaN fails too; float32 rounding passes
        raise RnnclfError(f"{source}: a temperature outside {LOWEST} to {HIGHEST}; the run directory is damaged")
    return found.astype(np.float32)


def fit_calibration(
    logits: np.ndarray, targets: np.ndarray, labels: list[str], min_support: int = 3
) -> tuple[np.ndarray, dict[str, Any]]:
    """The temperature fitted on a run's validation logits, and calibration.json: it, where it was fitted, why a
    label took the shared one or T = 1 was kept, and the validation ECE and Brier score before and after it (with
    the loss before; the loss after is the validation `loss` of metrics.json)."""
    fit = fit_temperature(logits, targets, min_support)
    temperature = fit.temperature.astype(np.float32)
    figures = calibration_report(logits, temperature, targets, labels)
    payload = {
        "method": "temperature",
        "temperature": figures["temperature"],
        "fitted_on": "valid",
        "texts": len(targets),
        "bounds": [LOWEST, HIGHEST],
        **({"shared_temperature_labels": [labels[i] for i in fit.shared_labels]} if fit.shared_labels else {}),
        **({"kept_at_1": KEPT_AT_ONE} if fit.kept_at_one else {}),
        "valid": {key: value for key, value in figures.items() if key != "temperature" and "reliability" not in key},
    }
    return temperature, payload


KEPT_AT_ONE = (
    "the validation loss kept falling as the temperature fell to its bound: the validation texts are too few or "
    "too easy to measure confidence on, so T = 1 was kept"
)


def describe_calibration(figures: dict[str, Any]) -> str:
    """One line: the temperature and the ECE / Brier score it gives, with the figures before it."""
    value = figures["temperature"]
    if value is None:
        return f"ECE {figures['ece']:.4f}, Brier {figures['brier']:.4f} (not calibrated)"
    shown = f"temperature {value:.3f}" if isinstance(value, float) else f"{len(value)} temperatures"
    return (
        f"ECE {figures['ece_before']:.4f} -> {figures['ece']:.4f}, Brier {figures['brier_before']:.4f} -> "
        f"{figures['brier']:.4f} (before -> after the {shown}, {figures['bins_count']} bins)"
    )
