"""Calibrated probabilities: the temperature, ECE and Brier score, and a calibration file's bounds."""

import numpy as np
import pytest
import torch

from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate, fit_temperature, read_temperature, reliability
from rnnclf.evaluation.scores import probabilities


def overconfident(n: int = 3000, classes: int = 4, scale: float = 3.0, seed: int = 0):
    """Logits whose softmax is calibrated, multiplied by `scale`; the labels drawn from that softmax."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, size=(n, classes))
    p = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    targets = np.array([rng.choice(classes, p=row) for row in p])
    return (logits * scale).astype(np.float32), targets


def test_the_temperature_is_the_minimum_of_the_validation_loss():
    logits, targets = overconfident()
    temperature = fit_temperature(logits, targets).temperature
    grid = np.linspace(0.5, 8, 3001)
    nll = [torch.nn.functional.cross_entropy(torch.from_numpy(logits / t), torch.from_numpy(targets)) for t in grid]
    assert temperature.shape == (1,)
    assert abs(temperature[0] - grid[int(np.argmin(nll))]) < 0.01
    assert abs(temperature[0] - 3.0) < 0.25  # the scale put on calibrated logits, recovered


def multi_label_logits(n: int = 4000, seed: int = 1):
    """Three labels drawn from the sigmoid of `raw`, their logits `raw` scaled by 1, 4 and 2."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 2, size=(n, 3))
    targets = (rng.random((n, 3)) < 1 / (1 + np.exp(-raw))).astype(np.float32)
    return (raw * np.array([1.0, 4.0, 2.0])).astype(np.float32), targets


def test_each_label_gets_its_own_temperature_and_thin_labels_the_shared_one():
    logits, targets = multi_label_logits()
    targets[:, 2] = 0
    targets[:2, 2] = 1  # two positives: under the minimum support of 3
    fit = fit_temperature(logits, targets, min_support=3)
    assert abs(fit.temperature[0] - 1.0) < 0.15 and abs(fit.temperature[1] - 4.0) < 0.6
    assert fit.shared_labels == [2] and not fit.kept_at_one
    shared = fit_temperature(logits.reshape(-1, 1), targets.reshape(-1, 1), min_support=1).temperature
    assert fit.temperature[2] == pytest.approx(shared[0], rel=1e-6)  # fitted on all labels' pairs together


def test_a_separable_validation_split_keeps_the_temperature_at_one():
    # no error to learn from: the loss keeps falling as T falls, and the fit reaches its lower bound
    logits = np.array([[2.0, -2.0], [-3.0, 3.0]] * 20, dtype=np.float32)
    fit = fit_temperature(logits, np.array([0, 1] * 20))
    assert fit.kept_at_one and fit.temperature[0] == 1.0
    assert not fit_temperature(*overconfident()).kept_at_one


def test_a_separable_label_takes_the_shared_temperature():
    logits, targets = multi_label_logits(seed=2)
    targets[:, 1] = (logits[:, 1] > 0).astype(np.float32)  # label 1 is decided by its logit's sign: separable
    fit = fit_temperature(logits, targets)
    assert 1 in fit.shared_labels and 0 not in fit.shared_labels and not fit.kept_at_one
    shared = fit_temperature(logits.reshape(-1, 1), targets.reshape(-1, 1), min_support=1).temperature[0]
    assert fit.temperature[1] == pytest.approx(shared, rel=1e-6)
    all_separable = fit_temperature(logits, (logits > 0).astype(np.float32))
    assert all_separable.kept_at_one and np.all(all_separable.temperature == 1.0)


def test_the_temperature_never_changes_the_most_probable_class():
    logits, targets = overconfident(seed=2)
    temperature = fit_temperature(logits, targets).temperature
    assert np.array_equal(calibrate(logits, temperature).argmax(axis=1), logits.argmax(axis=1))


def test_expected_calibration_error_by_hand():
    # confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.55 (right): two bins hold texts
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.55, 0.45]])
    targets = np.array([0, 1, 1, 0])
    figures = reliability(p, targets, bins=10)
    # bin (0.8, 0.9]: confidence 0.9, accuracy 0.5; bin (0.5, 0.6]: confidence 0.575, accuracy 1
    assert figures["ece"] == pytest.approx((2 * 0.4 + 2 * 0.425) / 4)
    brier = np.mean([0.01 + 0.01, 0.81 + 0.81, 0.16 + 0.16, 0.2025 + 0.2025])
    assert figures["brier"] == pytest.approx(brier)
    assert [b["count"] for b in figures["bins"]] == [0, 0, 0, 0, 0, 2, 0, 0, 2, 0]


def test_multi_label_calibration_is_over_every_text_and_label():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    p = rng.random((200, 4))
    targets = (rng.random((200, 4)) < p**2).astype(np.float32)
    figures = reliability(p, targets)
    assert figures["brier"] == pytest.approx(metrics.brier_score_loss(targets.ravel(), p.ravel()))
    bins = np.clip(np.ceil(p.ravel() * 15) - 1, 0, 14)
    expected = (
        sum(
            np.sum(bins == b) * abs(targets.ravel()[bins == b].mean() - p.ravel()[bins == b].mean())
            for b in range(15)
            if np.any(bins == b)
        )
        / p.size
    )
    assert figures["ece"] == pytest.approx(expected)


def test_calibrated_logits_have_a_lower_error_than_overconfident_ones():
    logits, targets = overconfident(seed=4)
    temperature = fit_temperature(logits[:1500], targets[:1500]).temperature  # fitted on one half, judged on the other
    held_out = logits[1500:], targets[1500:]
    before = reliability(probabilities(held_out[0], False), held_out[1])
    after = reliability(probabilities(calibrate(held_out[0], temperature), False), held_out[1])
    assert after["ece"] < before["ece"] / 2 and after["brier"] < before["brier"]


@pytest.mark.parametrize(
    ("value", "multi_label"),
    [("2", False), (True, False), (1e308, False), (1e-300, False), ({"a": "x", "b": 1}, True), ({"a": 1}, True)],
)
def test_a_temperature_that_is_not_a_number_in_bounds_is_refused(value, multi_label):
    with pytest.raises(RnnclfError, match="the run directory is damaged"):
        read_temperature({"temperature": value}, ["a", "b"], multi_label, "calibration.json")
    assert read_temperature({"temperature": {"a": 2, "b": 0.5}}, ["a", "b"], True, "x").tolist() == [2.0, 0.5]
