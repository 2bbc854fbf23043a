"""Multi-label metrics: scikit-learn's definitions on indicator arrays (zero_division=0), checked against it in
the tests. The decision thresholds are thresholds.py's.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def multilabel_report(
    probabilities: np.ndarray, targets: np.ndarray, labels: list[str], thresholds: np.ndarray
) -> dict[str, Any]:
    """Everything eval shows for a multi-label model, as plain JSON-able values.

    A label is predicted when its probability is >= its threshold. A text with no true and no predicted
    label has samples-F1 0, as in scikit-learn with zero_division=0.
    """
    thresholds = np.asarray(thresholds, dtype=float)
    shape = (np.shape(probabilities)[0], len(labels)) if np.ndim(probabilities) == 2 else None
    if np.shape(probabilities) != shape or np.shape(targets) != shape or thresholds.shape != (len(labels),):
        raise ValueError("probabilities and targets must be (texts, labels) and thresholds (labels,)")
    predicted = np.asarray(probabilities) >= thresholds[None, :]
    true = np.asarray(targets).astype(bool)
    both = predicted & true
    tp, support, predicted_count = both.sum(axis=0), true.sum(axis=0), predicted.sum(axis=0)
    precision, recall = safe_divide(tp, predicted_count), safe_divide(tp, support)
    # 2tp / (2tp + fp + fn): scikit-learn's F1, equal to 2PR / (P + R) where both are defined
    f1 = safe_divide(2 * tp, support + predicted_count)
    row_tp, row_true, row_predicted = both.sum(axis=1), true.sum(axis=1), predicted.sum(axis=1)
    texts, cells = true.shape[0], true.size
    subset_accuracy = _mean((predicted == true).all(axis=1))
    return {
        "micro_f1": float(safe_divide(2 * tp.sum(), support.sum() + predicted_count.sum())),
        "macro_f1": _mean(f1),
        "weighted_f1": float(safe_divide((f1 * support).sum(), support.sum())),
        "samples_f1": _mean(safe_divide(2 * row_tp, row_true + row_predicted)),
        "micro_precision": float(safe_divide(tp.sum(), predicted_count.sum())),
        "micro_recall": float(safe_divide(tp.sum(), support.sum())),
        "macro_precision": _mean(precision),
        "macro_recall": _mean(recall),
        "subset_accuracy": subset_accuracy,
        "accuracy": subset_accuracy,
        "hamming_loss": float((predicted != true).sum() / cells) if cells else 0.0,
        "support": int(texts),
        "label_cardinality": _mean(row_true),
        "predicted_cardinality": _mean(row_predicted),
        "no_label_predicted": int((row_predicted == 0).sum()),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "threshold": float(thresholds[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "multi_label": True,
    }


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """A multi-label report's summary figures, without the per-label table."""
    keys = ("micro_f1", "macro_f1", "samples_f1", "micro_precision", "micro_recall", "accuracy", "hamming_loss")
    return {key: report[key] for key in keys}


def describe_label_sets(targets: dict[str, np.ndarray]) -> str:
    """For the training log: labels per training text, and texts with no label in each split."""
    none = {name: int((rows.sum(axis=1) == 0).sum()) for name, rows in targets.items()}
    counts = ", ".join(f"{count:,} in {name}" for name, count in none.items() if count)
    return f"multi-label; {targets['train'].sum(axis=1).mean():.2f} labels per training text" + (
        f"; texts with no label: {counts}" if counts else ""
    )
