"""The one training loop. Every kind of training (a classifier, a language model, a fine-tuned classifier, a trial of
rnnclf tune) runs through `Loop.run`; read it top to bottom.

setup() prepares this process (threads, precision, seed) and asks the recipe for its data, model and step; start()
writes a new run directory or puts a saved state back; each epoch is run_epoch() (the recipe's batches, one or
more steps each) then end_epoch() (the recipe validates; best weights, metrics line, TensorBoard, curves, early
stopping, state); finish() asks the recipe for the summary and writes metrics.json. What differs between kinds of
training is the recipe's (training/recipe.py); everything here happens once, for all of them.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from rnnclf import files
from rnnclf.config.schema import Config
from rnnclf.device import cores
from rnnclf.device.precision import choose_device, choose_precision
from rnnclf.device.threads import ThreadGovernor
from rnnclf.errors import RnnclfError
from rnnclf.models.classifier import count_parameters
from rnnclf.runs.tensors import save_tensors
from rnnclf.training import checkpoint, distributed, session
from rnnclf.training.checkpoint import Progress
from rnnclf.training.distributed import Group
from rnnclf.training.recipe import Recipe
from rnnclf.training.step import NonFiniteLoss
from rnnclf.views.plots import save_curves
from rnnclf.views.tensorboard import log_epoch, log_step, require_tensorboard, tensorboard

Log = Callable[[str], None]
# called at the end of each epoch with the epoch, its validation score and whether it was the last (the epochs are
# done, or early stopping); what it raises stops the run (rnnclf tune prunes a trial so)
EpochHook = Callable[[int, float, bool], None]


def fit(
    recipe: Recipe,
    config: Config,
    run_dir: Path,
    resuming: bool,
    command: list[str],
    log: Log,
    on_epoch: EpochHook | None = None,
    trial: bool = False,
) -> dict[str, Any]:
    """Set up this process (and the process group when torchrun started several), then train. Returns the summary.

    A `trial` of rnnclf tune leaves the test split alone, saves no training state (a stopped trial is run again,
    not resumed) and draws its curves once, at the end."""
    if config.output.tensorboard:
        require_tensorboard()  # before any work: a missing package is a mistake in the config
    group = distributed.from_env()
    owned = not distributed.joined()  # rnnclf tune --nproc holds one group for all its trials
    device = distributed.start(group, choose_device(config.train.device))
    clean = False
    try:
        loop = Loop(recipe, config, run_dir, resuming, command, log if group.main else lambda message: None)
        loop.on_epoch, loop.trial = on_epoch, trial
        summary = loop.run(group, device)
        clean = True
        return summary
    except Exception as exc:
        if group.active and distributed.is_lost_peer(exc):
            again = f"rnnclf {recipe.command} --resume {run_dir} --nproc {group.world}"
            raise distributed.lost_peers(exc, group, again, checkpoint.has_state(run_dir)) from None
        raise
    finally:
        if owned:
            distributed.stop(group, together=clean)


class Loop:
    """One training session of one process: a new run, or a resumed one."""

    def __init__(
        self, recipe: Recipe, config: Config, run_dir: Path, resuming: bool, command: list[str], log: Log
    ) -> None:
        self.recipe, self.config, self.tc, self.run_dir = recipe, config, config.train, run_dir
        self.resuming, self.command, self.log = resuming, command, log
        self.saved = resuming and checkpoint.has_state(run_dir)  # else a resumed run starts again from its start
        self.on_epoch: EpochHook | None = None
        self.trial = False
        self.plotting = True  # until matplotlib is found missing (said once)
        self.env_noted: dict | None = None  # the last thread change written to env.json
        recipe.loop = self

    def run(self, group: Group, device: torch.device) -> dict[str, Any]:
        self.setup(group, device)
        self.start()
        with (
            session.stop_on_signals(escalate=not group.active) as stop,
            tensorboard(self.config.output.tensorboard and group.main, self.run_dir, self.resumed_at) as board,
        ):
            while self.progress.epoch <= self.epochs:
                epoch_seconds, tokens = self.run_epoch(stop, board)
                self.end_epoch(epoch_seconds, tokens, board)
        return self.finish()

    # setting up

    def setup(self, group: Group, device: torch.device) -> None:
        """This process's threads, precision and seed; the recipe's data, model and step."""
        tc = self.tc
        self.group, self.device = group, device
        available = max(1, cores.available_cores() // group.local_world)
        # distributed: each process keeps its share of the cores (the others are its own peers, not load)
        share = f"its share of the cores among {group.world} processes" if group.active else ""
        fixed = tc.num_threads or (available if group.active else None)
        self.governor = ThreadGovernor(available, fixed, self.log, share)
        self.precision = choose_precision(device, tc.amp)
        session.seed_everything(tc.seed)
        self.progress = Progress(summary=self.recipe.prepare_data())
        self.epochs = self.recipe.epochs()
        self.threads, why = self.governor.start()  # the sample of the machine's load spans the data's preparation
        self.log(self.describe_device(why))
        self.model = self.recipe.build_model()
        self.net = self.model  # DDP copies rank 0's weights to all; each rank then draws its own dropout masks
        if group.active:
            ids = [device] if device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids, **self.recipe.ddp_options)
            torch.manual_seed(tc.seed + group.rank)
        self.progress.summary["parameters"] = count_parameters(self.model)
        self.log(self.recipe.describe_model(self.progress.summary["parameters"]))
        self.optimization = self.recipe.build_step()

    def describe_device(self, why: str) -> str:
        device, group = self.device, self.group
        name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        return (
            f"device: {device}{name}, {self.threads} CPU thread{'s' if self.threads > 1 else ''} ({why}), mixed "
            f"precision: {self.precision.describe()}"
            + (f"; {cores.passive_wait_reason}" if cores.passive_wait_reason else "")
            + (f", {group.world} processes ({'nccl' if device.type == 'cuda' else 'gloo'})" if group.active else "")
        )

    def start(self) -> None:
        """A new run directory; or a resumed run's saved state put back (its start, when it stopped before its
        first save)."""
        self.resumed_at = None
        if not self.resuming:
            self.env = self.new_environment()
            self.governor.changes = self.env["thread_changes"]  # env.json is rewritten at each save when it grows
            if self.group.main:  # everything is validated: only now does the run directory come into being
                session.create_run_dir(self.run_dir, lambda folder: self.recipe.write_run_files(folder, self.env))
            self.log(f"run directory: {self.run_dir}")
            return
        if self.saved:
            state = checkpoint.load_state(self.run_dir / files.STATE)
            self.recipe.check_state(state)
            opt = self.optimization
            args = (opt.optimizer, opt.scheduler, opt.scaler, self.device, self.group)
            self.progress = checkpoint.restore_state(state, self.model, *args)
        p = self.progress
        self.env = session.read_environment(self.run_dir) or self.new_environment()
        resumed = {"at": session.now(), "epoch": p.epoch, "batch": p.batch, "threads": self.threads}
        self.env.setdefault("resumed", []).append(resumed | {"command": self.command, "processes": self.group.world})
        self.governor.changes = self.env.setdefault("thread_changes", [])
        if self.group.main:
            session.keep_epochs_before(self.run_dir / files.METRICS_LOG, p.epoch)
            files.write_json(self.run_dir / files.ENV, self.env)
        self.resumed_at = p.step
        where = f"at epoch {p.epoch}, batch {p.batch} (step {p.step})" if self.saved else "from the start"
        self.log(f"resuming {self.run_dir} {where}{'' if self.saved else ': it stopped before its first save'}")

    def new_environment(self) -> dict[str, Any]:
        precision, world = self.precision.describe(), self.group.world
        env = session.environment(self.device, self.threads, precision, self.tc.seed, self.command, world)
        return env | {"thread_changes": []}

    def save(self) -> None:
        """The training state (every rank's random state and running sums, so that a resumed distributed run goes
        on as each rank was), and env.json when the thread count changed since the last save."""
        ranks = distributed.gather(checkpoint.rank_state(self.progress), self.group) if self.group.active else None
        if self.group.main:
            opt = self.optimization
            state = checkpoint.training_state(self.model, opt.optimizer, opt.scheduler, opt.scaler, self.progress)
            checkpoint.save_state(self.run_dir / files.STATE, state | {"ranks": ranks})
            if self.governor.changes and self.governor.changes[-1] is not self.env_noted:
                files.write_json(self.run_dir / files.ENV, self.env)
                self.env_noted = self.governor.changes[-1]

    # one epoch

    def run_epoch(self, stop: Any, board: Any) -> tuple[float, int]:
        """Train on this epoch's remaining batches; returns the epoch's seconds (this session's part) and tokens."""
        p, tc, group = self.progress, self.tc, self.group
        self.model.train()
        self.recipe.start_epoch(p.epoch)
        batches = self.recipe.epoch_batches(p.epoch)
        # session: since the last save (adds up to train_seconds); epoch_start: this session's part of the epoch
        session_start = epoch_start = time.perf_counter()
        tokens = 0
        bar = tqdm(
            batches[p.batch :],
            total=len(batches),
            initial=p.batch,
            desc=f"epoch {p.epoch}/{self.epochs}",
            leave=False,
            disable=None if group.main else True,
            dynamic_ncols=True,
        )
        for batch in bar:
            self.governor.check(p.step)
            steps_before = p.step
            batch_tokens, loss = self.take_step(batch)
            p.batch += 1
            tokens += batch_tokens
            if board is not None:
                log_step(board, p.step, loss, self.learning_rate())
            speed = tokens / (time.perf_counter() - epoch_start)
            bar.set_postfix(**self.recipe.postfix(p), tok_s=f"{speed:,.0f}", refresh=False)
            halt = distributed.any_rank(stop.signum is not None, group, self.device)  # all ranks stop together
            # train.save_every counts steps; the state is saved at the end of the batch that reaches one
            if halt or (tc.save_every and p.step // tc.save_every > steps_before // tc.save_every):
                p.seconds += time.perf_counter() - session_start
                session_start = time.perf_counter()
                if not self.trial:
                    self.save()
                if halt:
                    bar.close()
                    self.stopped(stop.signum)
        bar.close()
        p.seconds += time.perf_counter() - session_start
        return time.perf_counter() - epoch_start, tokens

    def learning_rate(self) -> float:
        """The optimizer's rate now (its first group's); 0 for a recipe fitted without one."""
        optimizer = self.optimization.optimizer
        return optimizer.param_groups[0]["lr"] if optimizer is not None else 0.0

    def take_step(self, batch: Any) -> tuple[int, float]:
        try:
            return self.recipe.train_batch(batch, self.progress)
        except NonFiniteLoss as exc:
            saved = (self.run_dir / files.STATE).exists()
            kept = "the last saved state and best weights are kept" if saved else "nothing was saved yet"
            raise RnnclfError(
                f"{self.recipe.loss_name} became {exc.value} at epoch {self.progress.epoch}, step "
                f"{self.progress.step + 1}; lower train.lr or set train.grad_clip"
                + ("" if self.trial else f" ({kept} in {self.run_dir})")
            ) from None

    def stopped(self, signum: int | None) -> None:
        resume_option = f" --nproc {self.group.world}" if self.group.active else ""
        raise session.TrainingStopped(
            signum or signal.SIGTERM,
            f"stopped at epoch {self.progress.epoch}, step {self.progress.step}; state saved. "
            f"Continue with: rnnclf {self.recipe.command} --resume {self.run_dir}{resume_option}",
        )

    def end_epoch(self, epoch_seconds: float, tokens: int, board: Any) -> dict[str, Any]:
        """Validate, keep the best weights, write the epoch's line, decide on early stopping, save the state."""
        p, tc = self.progress, self.tc
        epoch, valid_start = p.epoch, time.perf_counter()
        validation = self.recipe.validate()
        valid_seconds = time.perf_counter() - valid_start
        score = validation.score
        if isinstance(self.optimization.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.optimization.scheduler.step(score)
        improved = self.is_better(score)
        if improved:
            p.best, p.best_epoch, p.stale = score, p.epoch, 0
            self.recipe.improved(validation)
            if self.group.main:
                save_tensors(self.run_dir / files.WEIGHTS, self.model.state_dict(), metadata={"epoch": str(p.epoch)})
        else:
            p.stale += 1
        record = self.recipe.epoch_record(validation, epoch_seconds, tokens) | {"valid_seconds": valid_seconds}
        if self.group.main:
            files.append_line(self.run_dir / files.METRICS_LOG, record)
        if board is not None:
            log_epoch(board, record)
        if self.plotting and self.group.main and not self.trial:
            self.plotting = save_curves(self.run_dir, self.recipe.curves_metric, self.log)
        self.log(self.recipe.describe_epoch(record, validation) + ("  *best" if improved else ""))
        stopping = tc.early_stopping is not None and p.stale >= tc.early_stopping
        p.next_epoch(stopping, self.epochs)
        if not self.trial:
            self.save()
        if stopping:
            self.log(f"early stopping: no {self.recipe.watched} for {p.stale} epochs")
        if self.on_epoch is not None:
            self.on_epoch(epoch, score, p.epoch > self.epochs)
        return record

    def is_better(self, score: float) -> bool:
        best = self.progress.best
        return best is None or (score < best if self.recipe.lower_is_better else score > best)

    # the end

    def finish(self) -> dict[str, Any]:
        """The recipe's final evaluation and summary: metrics.json, env.json's end time. Returns the summary."""
        distributed.barrier(self.group)  # rank 0 has written the last epoch's line
        lines = (self.run_dir / files.METRICS_LOG).read_text(encoding="utf-8").splitlines()
        summary = self.recipe.finish([json.loads(line) for line in lines])
        if self.trial and self.plotting and self.group.main:  # a trial draws its curves once
            save_curves(self.run_dir, self.recipe.curves_metric, self.log)
        if self.group.main:
            files.write_json(self.run_dir / files.METRICS, summary)
            self.env["finished"] = session.now()
            files.write_json(self.run_dir / files.ENV, self.env)
        return summary

    def history_summary(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """What every summary has: the best epoch, the epochs run, training time and speed."""
        return {
            "best_epoch": self.progress.best_epoch,
            "epochs_run": len(history),
            "train_seconds": self.progress.seconds,
            "tokens_per_s": sum(r["tokens_per_s"] for r in history) / len(history),
        }

    # for rnnclf tune: what a trial of this config costs, measured before the search

    def estimate_epoch_seconds(self, sample: int = 5) -> float:
        """Seconds one epoch (training and validation) takes here, from a few training steps timed after setup().
        The steps change the model; the loop is not run afterwards."""
        batches = self.recipe.epoch_batches(1)
        chosen = batches[:: max(1, len(batches) // sample)][:sample]
        scratch = Progress()
        if len(chosen) > 1:
            self.try_step(chosen[0], scratch)  # warm-up: the first step pays for allocations
            chosen = chosen[1:]
        started = time.perf_counter()
        for batch in chosen:
            self.try_step(batch, scratch)
        per_token = (time.perf_counter() - started) / max(1, sum(self.recipe.batch_tokens(b) for b in chosen))
        train_tokens, valid_tokens = self.recipe.token_counts()
        return per_token * (train_tokens + valid_tokens / 3)  # a forward pass is about a third of a step

    def try_step(self, batch: Any, scratch: Progress) -> None:
        try:
            self.recipe.train_batch(batch, scratch)
        except NonFiniteLoss:  # a config whose loss diverges takes as long; its trial says what went wrong
            pass
