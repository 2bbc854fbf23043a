"""Optimizers (with discriminative rates by layer group) and learning-rate schedules."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rnnclf.config.schema import TrainConfig

SLANT = 32  # train.scheduler slanted: the lowest rate is lr / SLANT


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer; with train.lr_decay above 1, one parameter group per layer group (discriminative rates)."""
    params: Any = [p for p in model.parameters() if p.requires_grad]
    if config.lr_decay != 1:
        from rnnclf.models.layer_groups import parameter_groups

        params = parameter_groups(model, config.lr, config.lr_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int, lower_is_better: bool = False
) -> Any:
    """train.scheduler's schedule; plateau lowers the rate when the validation score stops improving (falling,
    when `lower_is_better`)."""
    if config.scheduler == "plateau":
        mode = "min" if lower_is_better else "max"
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
