"""One training step, and what it is made of: loss, optimizer, schedule, gradient scaler.

`TrainStep` is the step `rnnclf train` runs (recipes/classify.py); the benchmark (scripts/) times this same object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rnnclf.config.schema import TrainConfig
from rnnclf.data.batching import Batch
from rnnclf.device.precision import Precision
from rnnclf.training.losses import DistillLoss, loss_function
from rnnclf.training.optim import build_optimizer, build_scheduler


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; the step was not taken."""

    def __init__(self, value: float) -> None:
        super().__init__(str(value))
        self.value = value


@dataclass
class TrainStep:
    """Forward, loss, backward, clip, optimizer and per-step schedule for one batch."""

    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # stepped here unless it is ReduceLROnPlateau (stepped per epoch on validation)
    scaler: torch.amp.GradScaler
    device: torch.device
    precision: Precision
    grad_clip: float | None = None
    multi_label: bool = False
    frozen: list = field(default_factory=list)  # parameters left as they are this epoch (gradual unfreezing)
    distill: nn.Module | None = None  # train.teacher: the loss of batches that carry the teacher's logits

    def __call__(self, batch: Batch) -> tuple[float, int]:
        """Train on one batch; returns its mean loss and the number of right answers (multi-label: texts whose
        labels at 0.5 are all right). Raises NonFiniteLoss (before any update) when the loss is NaN or infinite."""
        if self.device.type == "cuda":  # page-locked memory lets the copy overlap the previous step
            batch.ids, batch.labels = batch.ids.pin_memory(), batch.labels.pin_memory()
        ids = batch.ids.to(self.device, non_blocking=True)
        targets = batch.labels.to(self.device, non_blocking=True)
        dtype = self.precision.autocast
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            logits = self.net(ids, batch.lengths)
            if batch.teacher is None:
                loss = self.loss_fn(logits.float(), targets)
            else:
                teacher, gold = batch.teacher.to(self.device), batch.gold.to(self.device)
                loss = self.distill(logits.float(), targets, teacher, gold)
        # the loss and the count of right answers in one read: one wait for the device per step, not three
        if self.multi_label:
            right = ((logits > 0) == (targets > 0.5)).all(dim=1)
        else:
            right = logits.argmax(dim=1) == targets
        loss_value, correct = torch.stack([loss.detach(), right.sum().to(loss.dtype)]).tolist()
        if not math.isfinite(loss_value):
            raise NonFiniteLoss(loss_value)
        apply_gradients(loss, self.net, self.optimizer, self.scaler, self.scheduler, self.grad_clip, self.frozen)
        return loss_value, int(correct)


def apply_gradients(
    loss: torch.Tensor,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    scheduler: Any,
    grad_clip: float | None,
    frozen: list | tuple = (),
) -> None:
    """Backward, clip, optimizer step and per-step schedule: what every training step (classifier or language
    model) does once its loss is known to be finite. `frozen` parameters get no gradient, so the optimizer
    neither moves nor decays them, nor counts their moments (gradual unfreezing)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    for param in frozen:
        param.grad = None
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    if scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step()


def build_step(
    model: nn.Module,
    net: nn.Module,
    config: TrainConfig,
    class_weights: torch.Tensor | None,
    total_steps: int,
    device: torch.device,
    precision: Precision,
    multi_label: bool = False,
) -> TrainStep:
    """The step `rnnclf train` runs for this config."""
    optimizer = build_optimizer(model, config)
    loss_fn = loss_function(multi_label, class_weights, config.label_smoothing).to(device)
    distill = None
    if config.teacher is not None:
        distill = DistillLoss(
            loss_fn, config.teacher_loss, config.teacher_temperature, config.teacher_weight, multi_label
        )
    return TrainStep(
        net=net,
        loss_fn=loss_fn,
        distill=distill,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, config, total_steps, config.metric == "loss"),
        scaler=torch.amp.GradScaler("cuda", enabled=precision.scaler and device.type == "cuda"),
        device=device,
        precision=precision,
        grad_clip=config.grad_clip,
        multi_label=multi_label,
    )
