"""Terminal tables of evaluations: classes, the confusion matrix, labels by support with their thresholds."""

import numpy as np

from rnnclf.evaluation.metrics import classification_report
from rnnclf.evaluation.multilabel import multilabel_report
from rnnclf.views.tables import format_multilabel_report, format_report


def test_table_shows_classes_and_matrix():
    report = classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]), ["sport", "business"])
    text = format_report(report)
    assert "sport" in text and "business" in text and "confusion matrix" in text
    assert "accuracy 0.6667" in text


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
