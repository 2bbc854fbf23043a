import json

import numpy as np
import pytest

from rnnclf.errors import RnnclfError
from rnnclf.evaluation.multilabel import multilabel_report
from rnnclf.evaluation.thresholds import read_thresholds, thresholds_file_payload, tune_thresholds
from rnnclf.training.losses import pos_weight
from rnnclf.views.tables import format_multilabel_report


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Probabilities, 0/1 targets and thresholds, with labels that never occur, texts with no label, and now and
    then thresholds that predict nothing at all."""
    rng = np.random.default_rng(seed)
    # scikit-learn reads one column as binary, not multi-label: one label is tested on its own below
    texts, num_labels = int(rng.integers(1, 40)), int(rng.integers(2, 8))
    targets = (rng.random((texts, num_labels)) < rng.uniform(0.05, 0.6, num_labels)).astype(np.uint8)
    targets[:, rng.random(num_labels) < 0.2] = 0
    targets[rng.random(texts) < 0.2] = 0
    # probabilities that lean towards the targets, on a coarse grid so that some equal a threshold
    probabilities = np.clip(np.round(0.5 * rng.random(targets.shape) + 0.4 * targets, 1), 0, 1)
    thresholds = rng.choice([0.1, 0.3, 0.5, 0.7], num_labels) if seed % 5 else np.ones(num_labels)
    return probabilities, targets, thresholds, [f"label{i}" for i in range(num_labels)]


@pytest.mark.parametrize("seed", range(30))
def test_metrics_match_scikit_learn(seed):
    from sklearn import metrics

    probabilities, targets, thresholds, labels = random_case(seed)
    predictions = (probabilities >= thresholds).astype(np.uint8)
    report = multilabel_report(probabilities, targets, labels, thresholds)
    for average in ("micro", "macro", "weighted", "samples"):
        expected = metrics.f1_score(targets, predictions, average=average, zero_division=0)
        assert report[f"{average}_f1"] == pytest.approx(expected), average
    for average in ("micro", "macro"):
        kwargs = {"average": average, "zero_division": 0}
        assert report[f"{average}_precision"] == pytest.approx(metrics.precision_score(targets, predictions, **kwargs))
        assert report[f"{average}_recall"] == pytest.approx(metrics.recall_score(targets, predictions, **kwargs))
    assert report["subset_accuracy"] == pytest.approx(metrics.accuracy_score(targets, predictions))
    assert report["accuracy"] == report["subset_accuracy"]
    assert report["hamming_loss"] == pytest.approx(metrics.hamming_loss(targets, predictions))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        targets, predictions, average=None, zero_division=0
    )
    for i, label in enumerate(labels):
        row = report["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[i], recall[i], f1[i]))
        assert row["support"] == support[i]
        assert row["threshold"] == thresholds[i]
    assert report["support"] == len(targets)
    assert report["label_cardinality"] == pytest.approx(targets.sum() / len(targets))
    assert report["predicted_cardinality"] == pytest.approx(predictions.sum() / len(targets))
    assert report["no_label_predicted"] == int((predictions.sum(axis=1) == 0).sum())
    json.dumps(report)


@pytest.mark.parametrize("seed", range(5))
def test_one_label_matches_scikit_learn(seed):
    from sklearn import metrics

    probabilities, targets, thresholds, _ = random_case(seed)
    probabilities, targets, thresholds = probabilities[:, :1], targets[:, :1], thresholds[:1]
    predictions = (probabilities >= thresholds).astype(np.uint8)
    report = multilabel_report(probabilities, targets, ["only"], thresholds)
    binary = {"average": "binary", "zero_division": 0}
    expected_f1 = metrics.f1_score(targets[:, 0], predictions[:, 0], **binary)
    assert report["macro_f1"] == report["weighted_f1"] == pytest.approx(expected_f1)
    assert report["macro_precision"] == pytest.approx(
        metrics.precision_score(targets[:, 0], predictions[:, 0], **binary)
    )
    # a second column that is never true nor predicted leaves micro and samples scores unchanged
    padded_targets, padded_predictions = (np.pad(a, ((0, 0), (0, 1))) for a in (targets, predictions))
    for average in ("micro", "samples"):
        expected = metrics.f1_score(padded_targets, padded_predictions, average=average, zero_division=0)
        assert report[f"{average}_f1"] == pytest.approx(expected)
    assert report["subset_accuracy"] == pytest.approx(metrics.accuracy_score(padded_targets, padded_predictions))
    assert report["hamming_loss"] == pytest.approx(metrics.hamming_loss(targets[:, 0], predictions[:, 0]))


def test_text_with_no_true_and_no_predicted_label_scores_zero_samples_f1():
    # scikit-learn with zero_division=0 gives such a text F1 0, not 1
    from sklearn import metrics

    targets = np.array([[1, 0], [0, 0]], dtype=np.uint8)
    probabilities = np.array([[0.9, 0.1], [0.2, 0.1]])
    report = multilabel_report(probabilities, targets, ["a", "b"], np.array([0.5, 0.5]))
    expected = metrics.f1_score(targets, (probabilities >= 0.5).astype(int), average="samples", zero_division=0)
    assert report["samples_f1"] == expected == 0.5
    assert report["subset_accuracy"] == 1.0
    # "b" never occurs and is never predicted: F1 0, and it counts in the macro average
    assert report["macro_f1"] == 0.5


def test_table_lists_every_label_by_support_with_thresholds():
    targets = np.array([[0, 1, 1], [0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)
    probabilities = np.full(targets.shape, 0.6)
    report = multilabel_report(probabilities, targets, ["rare", "common", "middle"], np.array([0.25, 0.5, 0.75]))
    report["loss"] = 0.1234
    text = format_multilabel_report(report, title="validation")
    lines = text.splitlines()
    assert lines[0] == "validation"
    assert (
        "micro F1" in lines[1] and "Hamming loss" in lines[1] and "(4 texts)" in lines[1] and "loss 0.1234" in lines[1]
    )
    assert [line.split()[0] for line in lines[3:]] == ["common", "middle", "rare"]
    assert lines[5].split()[-2:] == ["1", "0.2500"]


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


def test_pos_weight_is_negatives_over_positives_capped():
    targets = np.zeros((300, 5), dtype=np.uint8)
    targets[:100, 0] = 1  # 200 / 100
    targets[:1, 1] = 1  # 299 / 1, capped
    targets[:, 3] = 1  # no negatives
    targets[:240, 4] = 1  # 60 / 240
    # label 2 has no positives
    assert pos_weight(targets, cap=100.0).tolist() == [2.0, 100.0, 1.0, 1.0, 0.25]
