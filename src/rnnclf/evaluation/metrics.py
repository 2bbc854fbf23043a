"""Accuracy, precision / recall / F1 (per class, macro, weighted) and the confusion matrix: scikit-learn's
definitions (zero_division=0), checked against it in tests/test_metrics.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    return np.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def classification_report(targets: np.ndarray, predictions: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Everything eval shows, as plain JSON-able values."""
    matrix = confusion_matrix(np.asarray(targets), np.asarray(predictions), len(labels))
    true_positive = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(support > 0, true_positive / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    total = int(support.sum())
    # macro averages over the classes that occur in the targets or the predictions: scikit-learn's
    # f1_score(average="macro") without `labels` (a class predicted but never true counts, with F1 0)
    present = (support > 0) | (predicted > 0)
    return {
        "accuracy": float(true_positive.sum() / total) if total else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / total) if total else 0.0,
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "support": total,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": matrix.tolist(),
        "labels": list(labels),
    }
