"""One training step, and what it is made of: loss, optimizer, schedule, gradient scaler.

`TrainStep` is the step `rnnclf train` runs; scripts/bench.py times this same object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnclf.batching import Batch
from rnnclf.config import TrainConfig
from rnnclf.engine.device import Precision
from rnnclf.engine.inference import loss_function
from rnnclf.errors import RnnclfError
from rnnclf.multilabel import pos_weight


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; the step was not taken."""

    def __init__(self, value: float) -> None:
        super().__init__(str(value))
        self.value = value


SLANT = 32  # train.scheduler slanted: the lowest rate is lr / SLANT
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


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer; with train.lr_decay above 1, one parameter group per layer group (discriminative rates)."""
    params: Any = [p for p in model.parameters() if p.requires_grad]
    if config.lr_decay != 1:
        from rnnclf.finetune import parameter_groups

        params = parameter_groups(model, config.lr, config.lr_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> Any:
    if config.scheduler == "plateau":
        mode = "min" if config.metric == "loss" else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=config.plateau_factor, patience=config.plateau_patience
        )
    if config.scheduler == "none":
        return None
    warmup = int(config.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:  # slanted rises from 1 / SLANT, the others from 0
            rise = (step + 1) / warmup
            return (1 + rise * (SLANT - 1)) / SLANT if config.scheduler == "slanted" else rise
        progress = (step - warmup) / max(total_steps - warmup, 1)
        if config.scheduler == "linear":
            return max(0.0, 1 - progress)
        if config.scheduler == "slanted":  # falls linearly from 1 to 1 / SLANT (ULMFiT's ratio of 32)
            return 1 - min(progress, 1.0) * (1 - 1 / SLANT)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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
            loss = self.loss_fn(logits.float(), targets)
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
    return TrainStep(
        net=net,
        loss_fn=loss_function(multi_label, class_weights, config.label_smoothing).to(device),
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, config, total_steps),
        scaler=torch.amp.GradScaler("cuda", enabled=precision.scaler and device.type == "cuda"),
        device=device,
        precision=precision,
        grad_clip=config.grad_clip,
        multi_label=multi_label,
    )
