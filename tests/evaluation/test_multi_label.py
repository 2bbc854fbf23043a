"""Multi-label metrics: micro, macro and samples F1, Hamming loss, against scikit-learn."""

import json

import numpy as np
import pytest

from rnnclf.evaluation.multilabel import multilabel_report


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
