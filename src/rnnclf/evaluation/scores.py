"""Scores of logits against targets: the classification report (single- or multi-label) and the plain
(binary) cross-entropy as `loss`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnnclf.evaluation import calibration
from rnnclf.evaluation.metrics import classification_report
from rnnclf.evaluation.multilabel import multilabel_report


def probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Softmax over classes, or a sigmoid per label (float32)."""
    return calibration.probabilities(logits, multi_label).astype(np.float32)


def scores(
    logits: np.ndarray, targets: np.ndarray, labels: list[str], thresholds: np.ndarray | None = None
) -> dict[str, Any]:
    """The classification report of logits against targets, with the plain (binary) cross-entropy as `loss`.
    Multi-label targets (0 / 1 rows) get the multi-label report at `thresholds` (default 0.5 for every label)."""
    if targets.ndim == 2:
        cut = np.full(len(labels), 0.5) if thresholds is None else thresholds
        report = multilabel_report(probabilities(logits, True), targets, labels, cut)
    else:
        report = classification_report(targets, logits.argmax(axis=1), labels)
    report["loss"] = cross_entropy(logits, targets)
    return report


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """The mean cross-entropy of logits against class indices, or for multi-label targets (0 / 1 rows) the mean
    binary cross-entropy per label: no weights, no smoothing (training.losses.objective adds those)."""
    logits_tensor = torch.from_numpy(logits)
    if targets.ndim == 2:
        return F.binary_cross_entropy_with_logits(logits_tensor, torch.from_numpy(targets).float()).item()
    return F.cross_entropy(logits_tensor, torch.from_numpy(targets).long()).item()
