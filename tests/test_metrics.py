import numpy as np
import pytest

from rnnclf.metrics import classification_report, format_report


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


def test_table_shows_classes_and_matrix():
    report = classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]), ["sport", "business"])
    text = format_report(report)
    assert "sport" in text and "business" in text and "confusion matrix" in text
    assert "accuracy 0.6667" in text
