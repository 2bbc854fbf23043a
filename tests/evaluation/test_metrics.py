"""Single-label metrics: scikit-learn's definitions, by hand and against scikit-learn."""

import numpy as np
import pytest

from rnnclf.evaluation.metrics import classification_report


def test_report_matches_hand_computed_values():
    # true:  a a a b b c ; predicted: a a b b c c
    targets = np.array([0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 0, 1, 1, 2, 2])
    report = classification_report(targets, predictions, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # a: p=1, r=2/3, f1=0.8 ; b: p=1/2, r=1/2, f1=1/2 ; c: p=1/2, r=1, f1=2/3
    assert report["per_class"]["a"] == {
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "support": 3,
    }
    assert report["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["weighted_f1"] == pytest.approx((0.8 * 3 + 0.5 * 2 + 2 / 3 * 1) / 6)


def test_absent_class_does_not_drag_macro_average():
    report = classification_report(np.array([0, 1]), np.array([0, 1]), ["a", "b", "never"])
    assert report["macro_f1"] == 1.0
    assert report["per_class"]["never"]["support"] == 0


def test_predicted_but_absent_class_counts_in_macro_average():
    # "c" is predicted once and never true: F1 0, and it counts in the macro average (scikit-learn's definition)
    report = classification_report(np.array([0, 1, 1]), np.array([0, 1, 2]), ["a", "b", "c"])
    assert report["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)


@pytest.mark.parametrize("seed", range(40))
def test_metrics_match_scikit_learn(seed):
    from sklearn import metrics

    rng = np.random.default_rng(seed)
    classes = int(rng.integers(2, 7))
    labels = [f"class{i}" for i in range(classes)]
    size = int(rng.integers(1, 60))
    # skewed draws, so that some classes are missing from the targets, the predictions, or both
    targets = rng.choice(classes, size, p=rng.dirichlet(np.full(classes, 0.5)))
    predictions = np.where(rng.random(size) < 0.6, targets, rng.choice(classes, size))
    report = classification_report(targets, predictions, labels)
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(targets, predictions))
    for average in ("macro", "weighted"):
        kwargs = {"average": average, "zero_division": 0}
        assert report[f"{average}_f1"] == pytest.approx(metrics.f1_score(targets, predictions, **kwargs))
    kwargs = {"average": "macro", "zero_division": 0}
    assert report["macro_precision"] == pytest.approx(metrics.precision_score(targets, predictions, **kwargs))
    assert report["macro_recall"] == pytest.approx(metrics.recall_score(targets, predictions, **kwargs))
    every = list(range(classes))
    p, r, f, s = metrics.precision_recall_fscore_support(targets, predictions, labels=every, zero_division=0)
    for i, label in enumerate(labels):
        row = report["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert row["support"] == s[i]
    assert report["confusion_matrix"] == metrics.confusion_matrix(targets, predictions, labels=every).tolist()
