"""Calibrated probabilities: a temperature fitted on the validation split, and how far probabilities are from
the frequencies they claim (expected calibration error, Brier score, the bins of a reliability diagram).

A temperature T divides the logits before the softmax (multi-label: before each label's sigmoid, one T per label).
It never changes which class is most probable; it makes a run's 0.9 mean "right 9 times in 10" on data like the
validation split. Fitted by minimising the validation negative log-likelihood, which is convex in 1/T, so a
bounded golden-section search finds its one minimum exactly (no optimiser settings, no randomness).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnclf.errors import RnnclfError

BINS = 15
LOWEST, HIGHEST = 0.05, 20.0  # the temperatures allowed: a separable validation split would push T toward 0
_SEARCH_STEPS = 60  # golden-section steps: the bracket shrinks by 0.618 each, to 1e-12 of its width


def fit_temperature(logits: np.ndarray, targets: np.ndarray, min_support: int = 3) -> tuple[np.ndarray, list[int]]:
    """The temperature minimising the validation NLL: shape (1,) for single-label logits, or (labels,) for
    multi-label ones (targets 0 / 1 rows), where a label with fewer than `min_support` validation positives (or
    negatives) takes the temperature fitted on all labels together. Returns it and the indices of those labels."""
    logits = logits.astype(np.float64)
    if targets.ndim == 1:
        return _golden(lambda beta: _softmax_nll(logits, targets, beta), 1), []
    shared = _golden(lambda beta: _sigmoid_nll(logits, targets, beta).mean(keepdims=True), 1)
    per_label = _golden(lambda beta: _sigmoid_nll(logits, targets, beta), logits.shape[1])
    positives = targets.sum(axis=0)
    thin = (positives < min_support) | (len(targets) - positives < min_support)
    return np.where(thin, shared[0], per_label), [int(i) for i in np.flatnonzero(thin)]


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


def bounded(temperature: np.ndarray) -> bool:
    """Whether a fitted temperature stopped at a bound of the search (a separable or tiny validation split)."""
    return bool(np.any(np.isclose(temperature, LOWEST, rtol=1e-3) | np.isclose(temperature, HIGHEST, rtol=1e-3)))


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
                "confidence": float(mean_confidence[i]),
                "frequency": float(frequency[i]),
            }
            for i in range(bins)
        ],
    }


def calibration_report(
    logits: np.ndarray, temperature: np.ndarray | None, targets: np.ndarray, labels: list[str]
) -> dict[str, Any]:
    """ECE and Brier score before and after the temperature, with the reliability bins of both: what eval shows."""
    from rnnclf.engine.inference import objective, probabilities

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
        "loss_before": objective(logits, targets),
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
    """The temperature of a calibration.json: one positive number, or one per label for a multi-label run."""
    value = payload.get("temperature") if isinstance(payload, dict) else None
    if multi_label and isinstance(value, dict) and set(value) == set(labels):
        found = np.array([value[label] for label in labels], dtype=np.float64)
    elif not multi_label and isinstance(value, int | float) and not isinstance(value, bool):
        found = np.array([value], dtype=np.float64)
    else:
        shape = "{label: temperature} for every label" if multi_label else "a number"
        raise RnnclfError(f"{source}: 'temperature' should be {shape}; the run directory is damaged")
    if not np.all(np.isfinite(found) & (found > 0)):
        raise RnnclfError(f"{source}: a temperature is not a positive number; the run directory is damaged")
    return found.astype(np.float32)


def fit_calibration(
    logits: np.ndarray, targets: np.ndarray, labels: list[str], min_support: int = 3
) -> tuple[np.ndarray, dict[str, Any]]:
    """The temperature fitted on a run's validation logits, and calibration.json: it, where it was fitted, and the
    validation ECE, Brier score and loss before and after it."""
    temperature, thin = fit_temperature(logits, targets, min_support)
    temperature = temperature.astype(np.float32)
    figures = calibration_report(logits, temperature, targets, labels)
    payload = {
        "method": "temperature",
        "temperature": figures["temperature"],
        "fitted_on": "valid",
        "texts": len(targets),
        "bounds": [LOWEST, HIGHEST],
        **({"shared_temperature_labels": [labels[i] for i in thin]} if thin else {}),
        "valid": {key: value for key, value in figures.items() if not key.startswith("reliability")},
    }
    return temperature, payload


def describe_calibration(figures: dict[str, Any]) -> str:
    """One line: the temperature and the ECE / Brier score it gives, with the figures before it."""
    value = figures["temperature"]
    if value is None:
        return f"ECE {figures['ece']:.4f}, Brier {figures['brier']:.4f} (not calibrated)"
    shown = f"temperature {value:.3f}" if isinstance(value, float) else f"{len(value)} temperatures"
    return (
        f"ECE {figures['ece_before']:.4f} -> {figures['ece']:.4f}, Brier {figures['brier_before']:.4f} -> "
        f"{figures['brier']:.4f} ({shown}, {figures['bins_count']} bins)"
    )
