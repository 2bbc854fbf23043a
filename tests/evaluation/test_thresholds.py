"""Multi-label decision thresholds: tuned per label, the floor, ties, auto, and the thresholds file."""

import json

import numpy as np
import pytest

from rnnclf.errors import RnnclfError
from rnnclf.evaluation.multilabel import multilabel_report
from rnnclf.evaluation.thresholds import read_thresholds, thresholds_file_payload, tune_thresholds


def f1_at(probabilities: np.ndarray, targets: np.ndarray, threshold: float) -> float:
    predicted = probabilities >= threshold
    denominator = predicted.sum() + targets.sum()
    return 2 * (predicted & targets.astype(bool)).sum() / denominator if denominator else 0.0


@pytest.mark.parametrize("seed", range(25))
def test_tuned_thresholds_beat_every_threshold_on_a_fine_grid(seed):
    rng = np.random.default_rng(seed)
    texts, num_labels = int(rng.integers(2, 40)), int(rng.integers(1, 6))
    targets = (rng.random((texts, num_labels)) < rng.uniform(0.02, 0.5, num_labels)).astype(np.uint8)
    probabilities = np.round(np.clip(rng.random(targets.shape) * 0.7 + 0.3 * targets * rng.random(), 0, 1), 2)
    labels = [f"label{i}" for i in range(num_labels)]
    floor, min_support = 0.05, 3
    thresholds, info = tune_thresholds(probabilities, targets, labels, min_support=min_support, floor=floor)
    # the grid holds every probability itself, so it reaches every prediction a threshold >= floor can make
    grid = np.unique(np.concatenate([np.linspace(floor, 1.0, 1901), probabilities.ravel()]))
    grid = grid[grid >= floor]
    best_micro = max(f1_at(probabilities.ravel(), targets.ravel(), t) for t in grid)
    assert f1_at(probabilities.ravel(), targets.ravel(), info["global"]) == pytest.approx(best_micro)
    assert floor <= info["global"] <= 1.0
    for i, label in enumerate(labels):
        assert floor <= thresholds[i] <= 1.0
        if targets[:, i].sum() < min_support:
            assert label in info["fallback"] and thresholds[i] == info["global"]
            continue
        assert label in info["tuned"]
        best = max(f1_at(probabilities[:, i], targets[:, i], t) for t in grid)
        assert f1_at(probabilities[:, i], targets[:, i], thresholds[i]) == pytest.approx(best)
    assert sorted(info["tuned"] + info["fallback"]) == sorted(labels)


@pytest.mark.parametrize(
    ("probabilities", "targets", "expected"),
    [
        # the top text or all four: F1 2/3 both; cutting at 0.8 is closer to 0.5 than the floor
        ([0.9, 0.7, 0.6, 0.2], [1, 0, 0, 1], 0.8),
        # the top text or the top four: F1 2/3 both; 0.275 is closer to 0.5 than 0.895
        ([0.99, 0.8, 0.6, 0.45, 0.1], [1, 0, 0, 1, 0], 0.275),
    ],
)
def test_equal_f1_prefers_the_threshold_closest_to_one_half(probabilities, targets, expected):
    thresholds, _ = tune_thresholds(np.array(probabilities)[:, None], np.array(targets)[:, None], ["a"], min_support=1)
    assert thresholds[0] == pytest.approx(expected)


def test_floor_holds_when_lower_thresholds_would_score_higher():
    # every positive sits below the floor: no threshold >= 0.2 finds one
    probabilities = np.array([[0.1], [0.15], [0.3], [0.05]])
    targets = np.array([[1], [1], [0], [1]], dtype=np.uint8)
    thresholds, info = tune_thresholds(probabilities, targets, ["a"], min_support=1, floor=0.2)
    assert thresholds[0] >= 0.2 and info["global"] >= 0.2


def calibrated_differently(rng: np.random.Generator, texts: int) -> tuple[np.ndarray, np.ndarray]:
    """Label 0's scores all sit low (positives near 0.3), label 1's all high (negatives near 0.7)."""
    targets = (rng.random((texts, 2)) < 0.3).astype(np.uint8)
    noise = rng.normal(0, 0.05, targets.shape)
    probabilities = np.stack([0.1 + 0.2 * targets[:, 0], 0.7 + 0.2 * targets[:, 1]], axis=1) + noise
    return np.clip(probabilities, 0, 1), targets


def test_tuning_beats_one_half_on_new_data_when_labels_need_different_thresholds():
    rng = np.random.default_rng(0)
    labels = ["low", "high"]
    thresholds, info = tune_thresholds(*calibrated_differently(rng, 400), labels)
    assert info["tuned"] == labels
    probabilities, targets = calibrated_differently(rng, 400)
    tuned = multilabel_report(probabilities, targets, labels, thresholds)
    half = multilabel_report(probabilities, targets, labels, np.array([0.5, 0.5]))
    assert tuned["macro_f1"] > 0.95 and tuned["micro_f1"] > half["micro_f1"] + 0.3
    assert 0.1 < thresholds[0] < 0.3 and 0.7 < thresholds[1] < 0.9


def test_thresholds_file_round_trip():
    labels = ["a", "b"]
    info = {"method": "per_label_f1", "global": 0.4}
    payload = json.loads(json.dumps(thresholds_file_payload(labels, np.array([0.25, 0.75]), info)))
    assert payload["thresholds"] == {"a": 0.25, "b": 0.75} and payload["global"] == 0.4
    # stored in the model's label order, whatever the order in the file
    assert read_thresholds(payload, ["b", "a"], "thresholds.json").tolist() == [0.75, 0.25]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([0.5, 0.5], '"thresholds" mapping'),
        ({"a": 0.5, "b": 0.5}, '"thresholds" mapping'),
        ({"thresholds": {"a": 0.5}}, "no threshold for label(s) 'b'"),
        ({"thresholds": {"a": 0.5, "b": 1.5}}, "label 'b' must be a number in [0, 1], got 1.5"),
        ({"thresholds": {"a": "0.5", "b": 0.5}}, "label 'a' must be a number in [0, 1]"),
        ({"thresholds": {"a": True, "b": 0.5}}, "label 'a' must be a number in [0, 1]"),
        ({"thresholds": {"a": None, "b": 0.5}}, "label 'a' must be a number in [0, 1]"),
    ],
)
def test_bad_thresholds_file_names_the_file_and_the_problem(payload, message):
    with pytest.raises(RnnclfError) as error:
        read_thresholds(payload, ["a", "b"], "runs/x/thresholds.json")
    text = str(error.value)
    assert text.startswith("runs/x/thresholds.json: ") and message in text and "\n" not in text


def test_auto_keeps_per_label_thresholds_only_where_they_generalise():
    from rnnclf.evaluation.thresholds import choose_thresholds

    rng = np.random.default_rng(0)
    labels = ["low", "high"]
    targets = (rng.random((600, 2)) < 0.3).astype(np.uint8)
    # "low" separates at 0.2, "high" at 0.8: one threshold for both cannot fit, per-label ones do
    centres = np.where(targets == 1, [0.3, 0.9], [0.1, 0.7])
    probs = np.clip(centres + rng.normal(0, 0.04, targets.shape), 0, 1)
    _, info = choose_thresholds(probs, targets, labels, "auto")
    assert info["method"] == "per_label_f1" and info["chosen_by"] == "auto"
    # calibrated probabilities of 40 rare labels: per-label tuning on a few hundred texts fits noise
    probs = rng.beta(0.3, 4, size=(400, 40))
    targets = (rng.random(probs.shape) < probs).astype(np.uint8)
    _, info = choose_thresholds(probs, targets, [f"l{i}" for i in range(40)], "auto")
    held_out = info["held_out_micro_f1"]
    assert info["method"] != "per_label_f1" and held_out["per_label"] < max(held_out["fixed"], held_out["global"])
