"""What a kind of training supplies to the one loop (training/loop.py): its data, model, batches, step, validation
and summary. rnnclf.recipes.classify (a classifier, fine-tuned or not, and tune's trials) and
rnnclf.recipes.pretrain (a language model) fill it in; the loop owns everything else (threads, precision, seeds,
the run directory, resume, saving, stopping, metrics lines, TensorBoard, curves, early stopping).

The methods are called in this order: prepare_data, epochs, build_model, build_step; then per epoch start_epoch,
epoch_batches, train_batch for each batch, validate, epoch_record, describe_epoch; then finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnclf.training.checkpoint import Progress


@dataclass
class Validation:
    """One epoch's validation: the score that picks the best weights and drives early stopping, and whatever the
    recipe keeps for its metrics line."""

    score: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Optimization:
    """What a recipe's step updates with; the loop saves, restores and reports them."""

    optimizer: torch.optim.Optimizer | None  # None: a recipe that fits its model otherwise (the linear model)
    scheduler: Any  # stepped per step by the recipe, except ReduceLROnPlateau (the loop steps it per epoch)
    scaler: torch.amp.GradScaler


class Recipe:
    """The parts of training that differ between kinds. `loop` is set by the Loop that runs the recipe."""

    command = "train"  # the rnnclf command that resumes it
    loss_name = "training loss"  # in the line that says the loss became NaN
    curves_metric = "accuracy"  # what curves.png shows (views.plots.save_curves)
    lower_is_better = False  # of Validation.score
    watched = "better valid accuracy"  # the early-stopping line: "no <watched> for N epochs"
    ddp_options: dict[str, Any] = {}  # DistributedDataParallel's keyword arguments
    loop: Any  # the training.loop.Loop running this recipe (its config, device, process group, model, log, ...)

    def prepare_data(self) -> dict[str, Any]:
        """Read and tokenize the data; returns the start of the summary (vocab_size, sizes)."""
        raise NotImplementedError

    def epochs(self) -> int:
        """How many epochs the loop runs (train.epochs, unless the recipe trains otherwise)."""
        return self.loop.tc.epochs

    def build_model(self) -> nn.Module:
        """The model, initialised (pretrained vectors, a language model's weights), on the loop's device."""
        raise NotImplementedError

    def describe_model(self, parameters: dict[str, int]) -> str:
        raise NotImplementedError

    def build_step(self) -> Optimization:
        raise NotImplementedError

    def check_state(self, state: dict[str, Any]) -> None:
        """A saved state that this recipe cannot continue: one line (RnnclfError)."""

    def write_run_files(self, folder: Path, env: dict[str, Any]) -> None:
        """What the run directory holds from its start (config.yaml, tokenizer.json, env.json, ...)."""
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Before an epoch's first batch (gradual unfreezing)."""

    def epoch_batches(self, epoch: int) -> list[Any]:
        """This process's batches of an epoch, in order (the loop skips those a resumed run has done)."""
        raise NotImplementedError

    def batch_tokens(self, batch: Any) -> int:
        raise NotImplementedError

    def token_counts(self) -> tuple[int, int]:
        """Tokens of the training and validation texts (Loop.estimate_epoch_seconds)."""
        raise NotImplementedError

    def train_batch(self, batch: Any, progress: Progress) -> tuple[int, float]:
        """Train on one batch (one step or several), counting steps, loss and texts in `progress`; returns its
        tokens and the loss to log. Raises training.step.NonFiniteLoss before an update with a NaN loss."""
        raise NotImplementedError

    def postfix(self, progress: Progress) -> dict[str, str]:
        """The progress bar's figures (besides tokens/s)."""
        raise NotImplementedError

    def validate(self) -> Validation:
        raise NotImplementedError

    def improved(self, validation: Validation) -> None:
        """The epoch just validated is the best so far."""

    def epoch_record(self, validation: Validation, epoch_seconds: float, tokens: int) -> dict[str, Any]:
        """The epoch's line of metrics.jsonl (all processes together)."""
        raise NotImplementedError

    def describe_epoch(self, record: dict[str, Any], validation: Validation) -> str:
        raise NotImplementedError

    def finish(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """After the last epoch: the final evaluation and metrics.json's summary."""
        raise NotImplementedError
