"""The training losses: cross-entropy over classes, binary cross-entropy per label (multi-label), class and
positive weights, label smoothing, and the output bias a multi-label model starts from.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnclf.errors import RnnclfError
from rnnclf.evaluation.multilabel import safe_divide


class MultiLabelLoss(nn.Module):
    """Binary cross-entropy per label on sigmoid outputs; `pos_weight` weighs each label's positive texts, and
    label smoothing moves every 0 / 1 target ε/2 toward 1/2.

    The weight goes to the positive texts, whole: not to the smoothed target's positive part (torch's pos_weight),
    which would also weigh every negative text's ε/2 and, for a rare label, put its optimum above 1/2 (a label
    1 in 20 with ε = 0.1 would be predicted everywhere)."""

    def __init__(self, pos_weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        smoothed = targets * (1 - self.label_smoothing) + self.label_smoothing / 2
        if self.pos_weight is None:
            return nn.functional.binary_cross_entropy_with_logits(logits, smoothed)
        weight = torch.where(targets > 0.5, self.pos_weight, torch.ones_like(self.pos_weight))
        return nn.functional.binary_cross_entropy_with_logits(logits, smoothed, weight=weight)


class DistillLoss(nn.Module):
    """train.teacher: the teacher's term for every text, and for a text with a gold label the gold loss beside it,
    (1 - weight) * gold + weight * teacher; a text without one (gold False) has the teacher's term alone. The sum
    over the batch is divided by its texts.

    kl: the KL divergence from the teacher's softmax (multi-label: each label's sigmoid) at temperature T to the
    student's at T, times T² so that its gradients keep their size as T changes (Hinton et al. 2015). mse: the
    mean squared difference of the logits (Tang et al. 2019), single-label rows centred first (a softmax ignores a
    shift, and a teacher's logits may be log-probabilities)."""

    def __init__(self, gold_loss: nn.Module, kind: str, temperature: float, weight: float, multi_label: bool) -> None:
        super().__init__()
        self.gold_loss, self.kind, self.temperature = gold_loss, kind, temperature
        self.weight, self.multi_label = weight, multi_label

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, teacher: torch.Tensor, gold: torch.Tensor
    ) -> torch.Tensor:
        per_text = self.teacher_term(logits, teacher)
        share = torch.where(gold, torch.full_like(per_text, self.weight), torch.ones_like(per_text))
        loss = (share * per_text).sum() / len(logits)
        if self.weight < 1 and bool(gold.any()):
            golden = self.gold_loss(logits[gold], targets[gold])
            loss = loss + (1 - self.weight) * golden * gold.sum() / len(logits)
        return loss

    def teacher_term(self, logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Each text's distance from the teacher (batch,)."""
        if self.kind == "mse":
            if not self.multi_label:
                logits = logits - logits.mean(dim=1, keepdim=True)
                teacher = teacher - teacher.mean(dim=1, keepdim=True)
            return ((logits - teacher) ** 2).mean(dim=1)
        t = self.temperature
        if self.multi_label:
            soft = torch.sigmoid(teacher / t)
            cross = F.binary_cross_entropy_with_logits(logits / t, soft, reduction="none")
            entropy = F.binary_cross_entropy_with_logits(teacher / t, soft, reduction="none")
            return (cross - entropy).mean(dim=1) * t * t
        student, target = F.log_softmax(logits / t, dim=1), F.log_softmax(teacher / t, dim=1)
        return F.kl_div(student, target, reduction="none", log_target=True).sum(dim=1) * t * t


def loss_function(multi_label: bool, weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> nn.Module:
    """The training loss: cross-entropy over classes, or for multi-label binary cross-entropy per label (with
    class weights as positive weights)."""
    if multi_label:
        return MultiLabelLoss(weight, label_smoothing)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)


def objective(
    logits: np.ndarray, targets: np.ndarray, weight: torch.Tensor | None = None, label_smoothing: float = 0.0
) -> float:
    """The mean loss of logits against targets (class indices, or 0 / 1 rows for multi-label); with class weights
    and label smoothing it is the training objective, without them the plain (binary) cross-entropy."""
    multi_label = targets.ndim == 2
    loss = loss_function(multi_label, weight.cpu() if weight is not None else None, label_smoothing)
    target = torch.from_numpy(targets).float() if multi_label else torch.from_numpy(targets).long()
    return loss(torch.from_numpy(logits), target).item()


POS_WEIGHT_CAP = 100.0  # multi-label `balanced`: a label with one positive in 5,000 texts gets 100, not 5,000


def class_weight_tensor(setting: str | dict[str, float], labels: list[str], targets: np.ndarray) -> torch.Tensor | None:
    """train.class_weights as a tensor: class weights, or for multi-label targets (0 / 1 rows) positive weights."""
    if setting == "none":
        return None
    if setting == "balanced" and targets.ndim == 2:
        return torch.tensor(pos_weight(targets, POS_WEIGHT_CAP), dtype=torch.float32)
    if setting == "balanced":
        counts = np.bincount(targets, minlength=len(labels)).astype(np.float64)
        return torch.tensor(len(targets) / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32)
    unknown = sorted(set(setting) - set(labels))
    if unknown:
        raise RnnclfError(
            f"train.class_weights: label '{unknown[0]}' is not in the training data (labels: {', '.join(labels)})"
        )
    return torch.tensor([setting.get(label, 1.0) for label in labels], dtype=torch.float32)


def pos_weight(targets: np.ndarray, cap: float = 100.0) -> np.ndarray:
    """Per label negatives / positives, for BCEWithLogitsLoss, at most `cap`.

    A label with no positives or no negatives in `targets` gets 1.0: the ratio is 0 or infinite there, and
    neither says anything useful (a weight of 0 would stop an always-true label from learning at all).
    """
    targets = np.asarray(targets).astype(bool)
    positives = targets.sum(axis=0)
    negatives = targets.shape[0] - positives
    ratio = safe_divide(negatives, positives)
    weights = np.where((positives > 0) & (negatives > 0), ratio, 1.0)
    return np.minimum(weights, cap)


def label_prior_logits(targets: np.ndarray, smallest: float = 1e-4) -> np.ndarray:
    """The logit of each label's share of texts (kept within [smallest, 1 - smallest]): the output bias at which
    an untrained model predicts each label's frequency."""
    share = np.clip(np.asarray(targets, dtype=np.float64).mean(axis=0), smallest, 1 - smallest)
    return np.log(share / (1 - share)).astype(np.float32)


def init_label_bias(head: nn.Linear, targets: np.ndarray) -> None:
    """Multi-label: each label's output starts at its training frequency rather than 1/2, so the first steps learn
    the texts, not that almost every label is almost always absent."""
    with torch.no_grad():
        head.bias.copy_(torch.from_numpy(label_prior_logits(targets)))
