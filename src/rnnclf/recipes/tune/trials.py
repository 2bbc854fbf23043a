"""The trials of rnnclf tune: a trial's epochs watched (pruned, or stopped by the budget), the other processes of an
--nproc trial following rank 0, and what a trial of the config costs, measured before the search."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any, Protocol

import optuna

from rnnclf.config.loading import parse_config
from rnnclf.config.schema import Config
from rnnclf.device.precision import choose_device
from rnnclf.recipes.classify import Classify, train
from rnnclf.training import distributed
from rnnclf.training.loop import Loop


class TrialFailed(Exception):
    """A trial that could not train (NaN loss, out of memory, an impossible combination); the search goes on."""


class Search(Protocol):
    """What a trial's watch reads of the search (search.Tuner)."""

    maximize: bool
    metric: str
    group: distributed.Group
    channel: Any

    def log(self, line: str) -> None: ...

    def record_time(self) -> None: ...

    def remaining(self) -> float: ...


class EpochWatch:
    """Each epoch of a trial: report its validation score, then stop the trial when it is clearly behind (pruned)
    or when the next epoch would not fit in the budget."""

    def __init__(self, tuner: Search, trial: optuna.Trial, epochs: int) -> None:
        self.tuner, self.trial, self.epochs = tuner, trial, epochs
        self.best: float | None = None
        self.started = self.last = time.monotonic()

    def __call__(self, epoch: int, score: float, last: bool) -> None:
        tuner, trial = self.tuner, self.trial
        if self.best is None or (score > self.best if tuner.maximize else score < self.best):
            self.best = score
        epoch_seconds, self.last = time.monotonic() - self.last, time.monotonic()
        # the best so far: a pruned trial's value is then its best epoch's, as a finished trial's is
        trial.report(self.best, epoch)
        tuner.record_time()
        tuner.log(f"trial {trial.number} epoch {epoch}/{self.epochs}: valid {tuner.metric} {score:.4f}")
        stop = None
        if not last and trial.should_prune():  # after the last epoch the trial is done anyway
            stop = f"pruned at epoch {epoch}"
            tuner.log(f"trial {trial.number}: {stop} (valid {tuner.metric} {self.best:.4f}, behind the median)")
        elif not last and tuner.remaining() < epoch_seconds:
            stop = f"budget spent at epoch {epoch}"
            tuner.log(f"trial {trial.number}: stopped at epoch {epoch}, the budget is spent")
        distributed.broadcast(stop, tuner.group, tuner.channel)  # --nproc: the trial's other processes stop with it
        if stop:
            trial.set_user_attr("stopped", stop)
            raise optuna.TrialPruned()


class TrialEnded(Exception):
    """--nproc: rank 0 stopped the trial (pruned, or the budget)."""


def follow(group: distributed.Group, channel: Any) -> None:
    """--nproc, the processes other than rank 0: train each trial rank 0 sends, in step with it, until it sends
    None (the search is over). A failed trial ends the tune (rank 0 says why)."""

    def each_epoch(epoch: int, score: float, last: bool) -> None:
        if distributed.broadcast(None, group, channel):
            raise TrialEnded

    while (message := distributed.broadcast(None, group, channel)) is not None:
        config = parse_config(message, "the trial's config from rank 0")
        try:
            train(config, log=lambda line: None, on_epoch=each_epoch, trial=True)
        except TrialEnded:
            pass
        gc.collect()  # as rank 0 does after each trial: the stopped trial's DistributedDataParallel goes now


def measure_epoch(config: Config) -> tuple[int, float, float]:
    """The training split's size, the seconds a trial of this config takes to start (data, model), and those one
    epoch (training and validation) takes here: a few training steps, timed. Fills the token cache that the trials
    then read."""
    started = time.perf_counter()
    recipe = Classify()
    loop = Loop(recipe, config, Path(os.devnull), False, [], lambda message: None)
    loop.setup(distributed.Group(), choose_device(config.train.device))
    setup_seconds = time.perf_counter() - started
    return recipe.train_size, setup_seconds, loop.estimate_epoch_seconds()
