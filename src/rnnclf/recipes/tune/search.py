"""rnnclf tune: search a config's settings on the validation split with Optuna, within a budget of time or trials.

The study lives in a database (SQLite in the output folder unless --storage names another), so a tune stopped by
Ctrl-C or a kill goes on where it was with the same command, and several processes or machines can work on one
study. Each trial is an ordinary run directory under OUT/trials/. Trial 0 is the config as given. The test split is
evaluated once, on the best trial's weights, after the search; it never chooses anything.

Read `Tuner.run` top to bottom.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rnnclf import files
from rnnclf.config.loading import config_to_dict
from rnnclf.config.schema import Config
from rnnclf.errors import RnnclfError
from rnnclf.recipes.tune.outputs import TRIALS_CSV, finish, show_value, write_trials_csv
from rnnclf.recipes.tune.space import (
    Dimension,
    apply_values,
    base_values,
    check_space,
    default_space,
    read_space,
    space_to_yaml,
)
from rnnclf.recipes.tune.study import (
    HOST,
    alive,
    comparable,
    first_difference,
    folder_lock,
    format_duration,
    impossible,
    open_storage,
    rerun_failed,
    was_interrupted,
)
from rnnclf.recipes.tune.trials import EpochWatch, TrialFailed, follow, measure_epoch
from rnnclf.training import distributed

Log = Callable[[str], None]

TRIALS_DIR, SPACE_FILE = "trials", "space.yaml"
KEEP_WEIGHTS = 3  # the best few trials keep their weights; the others keep config, metrics and curves
FAILURES_IN_A_ROW = 5  # then something is wrong with every trial, not with one setting
WAIT_FOR_RANK_0 = 3600  # --nproc: seconds the other processes wait for rank 0 between trials
IMPOSSIBLE = "an impossible combination"
TRIALS_IN_A_BUDGET = 6  # the default space keeps train.epochs low enough for about this many trials in a budget
# Median pruning: a tune here runs tens of trials, not hundreds. Hyperband's brackets need many trials and one
# fixed number of epochs, and the number of epochs is itself searched; the median needs neither, and one lucky
# trial cannot move it much. From epoch 2, once 2 trials have finished, a trial whose best validation score so far
# is behind the median of the finished trials at the same epoch stops.
PRUNE_FROM_EPOCH, PRUNE_AFTER_TRIALS = 2, 2
RANDOM_TRIALS = 5  # TPE's first trials are random, then it models the good and the bad regions


@dataclass
class TuneSettings:
    config_path: Path
    base: Config
    out: Path
    space_path: Path | None = None
    budget: float | None = None  # seconds, for the whole study
    trials: int | None = None  # finished trials, for the whole study
    storage: str | None = None
    keep: int = KEEP_WEIGHTS


class Tuner:
    """One tuning session: this process's share of a study."""

    def __init__(self, settings: TuneSettings, command: list[str], log: Log, group: distributed.Group) -> None:
        self.settings, self.base, self.out, self.group = settings, settings.base, settings.out, group
        self.metric = self.base.train.metric
        self.maximize = self.metric != "loss"
        self.command, self.log = command, log
        self.started = time.monotonic()
        self.session_key = f"seconds {HOST} {os.getpid()} {time.time():.0f}"
        self.first_estimate: float | None = None  # a whole trial of the config as given, before any trial finished
        self.channel: Any = None  # --nproc: the process group of the messages between trials

    def run(self) -> dict[str, Any]:
        with folder_lock(self.out):  # this machine's workers on one folder open the study one at a time
            self.open_study()
            self.recover_killed_trials()
        self.search()
        return finish(self)

    # the study

    def open_study(self) -> None:
        settings = self.settings
        # heartbeats, multivariate TPE and the constant liar are marked experimental; they are what this needs
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.storage, self.storage_shown = open_storage(settings.storage, self.out)
        name = self.out.resolve().name
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial gets rnnclf's own line
        try:  # read once: its trials and the space it recorded
            earlier = optuna.load_study(study_name=name, storage=self.storage)
            trials, stored_space = earlier.trials, earlier.user_attrs.get("space")
        except KeyError:
            trials, stored_space = [], None
        self.space = self.read_space(stored_space, measure=not trials)
        self.study = optuna.create_study(
            storage=self.storage,
            study_name=name,
            direction="maximize" if self.maximize else "minimize",
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(
                # a continued search draws new points, and so does each of several workers
                seed=hash((self.base.train.seed, len(trials), os.getpid())) % 2**31,
                n_startup_trials=RANDOM_TRIALS,
                multivariate=True,
                constant_liar=True,  # parallel workers do not all propose the same point
            ),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS, n_warmup_steps=PRUNE_FROM_EPOCH),
        )
        self.check_same_study()
        files.write_yaml(self.out / SPACE_FILE, space_to_yaml(self.space))
        if not self.study.trials:
            values = base_values(self.base, self.space)
            left = [d.key for d in self.space if d.key not in values]
            # trial 0 is the config as given, unless some of its values lie outside the space: then it draws those
            self.study.enqueue_trial(values, user_attrs={"baseline": True} if not left else {}, skip_if_exists=True)
            self.log(
                f"trial 0 starts from the config, drawing {', '.join(left)} (the config's value is outside the space)"
                if left
                else "trial 0 is the config as given"
            )
        else:
            done = sum(t.state.is_finished() for t in self.study.trials)
            where = "its own search space" if self.settings.space_path is None else str(self.settings.space_path)
            self.log(f"continuing the study in {self.storage_shown} ({done} trials finished), with {where}")

    def read_space(self, stored: dict[str, Any] | None, measure: bool) -> list[Dimension]:
        """The space file, the study's own space when it continues, or the default space sized by the data. A new
        study first times a few training steps of the config: the budget must hold one trial of it."""
        size = None
        if measure:
            size, setup_seconds, epoch_seconds = measure_epoch(self.base)
            self.setup_seconds = setup_seconds
            self.first_estimate = setup_seconds + epoch_seconds * self.base.train.epochs
            self.check_budget(epoch_seconds)
        if self.settings.space_path is not None:
            return read_space(self.settings.space_path, self.base)
        if stored:
            return check_space(stored, self.base, f"the study's space ({self.storage_shown})")
        if size is None:
            size, setup_seconds, epoch_seconds = measure_epoch(self.base)
        most_epochs = None
        if self.settings.budget is not None:  # a short budget: trials short enough that several fit
            most_epochs = int((self.settings.budget / TRIALS_IN_A_BUDGET - setup_seconds) / epoch_seconds)
        return default_space(self.base, size, most_epochs)

    def check_budget(self, epoch_seconds: float) -> None:
        budget = self.settings.budget
        if budget is not None and budget < self.first_estimate:
            raise RnnclfError(
                f"--budget {format_duration(budget)} is shorter than one trial of {self.settings.config_path} "
                f"(about {format_duration(self.first_estimate)} here, measured: {format_duration(self.setup_seconds)} to "
                f"start, then {self.base.train.epochs} epochs of {format_duration(epoch_seconds)}); give at least "
                f"{format_duration(self.first_estimate * 1.2)}, "
                "or fewer train.epochs"
            )

    def check_same_study(self) -> None:
        """A study goes on only with the config and space it started with; otherwise nothing of it is touched."""
        mine = {"config": comparable(self.base), "space": space_to_yaml(self.space)}
        attrs = self.study.user_attrs
        if "config" not in attrs:
            for key, value in mine.items():
                self.study.set_user_attr(key, value)
            return
        for key, value in mine.items():
            if attrs.get(key) != value:
                what = first_difference(attrs.get(key) or {}, value)
                raise RnnclfError(
                    f"{self.out}: this study was started with another {'config' if key == 'config' else 'search space'}"
                    f" ({what}); run the same config and space to continue it, or give a new --out"
                )

    def recover_killed_trials(self) -> None:
        """Trials left running by a process of this machine that no longer exists (a kill): failed, and run again.
        Other machines' trials are found by their heartbeat instead (after GRACE_SECONDS)."""
        storage = self.study._storage  # noqa: SLF001  (a note on a trial this process does not run)
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            pid = trial.user_attrs.get("pid")
            if trial.user_attrs.get("host") != HOST or pid is None or alive(pid):
                continue
            try:  # one transaction: of two workers starting together, one fails the trial and queues it again
                storage.set_trial_user_attr(trial._trial_id, "failure", f"killed (process {pid} ended)")
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            rerun_failed(self.study, trial)
            self.log(f"trial {trial.number} was killed with its process; it runs again")
        optuna.storages.fail_stale_trials(self.study)

    # the search

    def search(self) -> None:
        why = self.stop_reason()
        if why:
            self.log(f"nothing to do: {why}")
            return

        def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
            self.record_time()
            self.tidy()
            self.write_trials()
            why = self.stop_reason()
            if why:
                self.log(f"search done: {why}")
                study.stop()

        self.log(self.describe_start())
        try:
            # gc: a stopped trial's model (with --nproc, its DistributedDataParallel) goes before the next one starts
            self.study.optimize(self.objective, catch=(TrialFailed,), callbacks=[after_trial], gc_after_trial=True)
        finally:  # also when Ctrl-C stops the search: trials.csv shows the interrupted trial
            self.record_time()
            self.write_trials()

    def write_trials(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        write_trials_csv(self.out / TRIALS_CSV, trials, [d.key for d in self.space], self.metric)

    def describe_start(self) -> str:
        budget, trials = self.settings.budget, self.settings.trials
        limits = [f"budget {format_duration(budget)} ({format_duration(self.remaining())} left)"] if budget else []
        limits += [f"{trials} trials"] if trials else []
        return f"searching {len(self.space)} keys on valid {self.metric}, {' and '.join(limits)}; study: {self.storage_shown}"

    def objective(self, trial: optuna.Trial) -> float:
        import torch

        from rnnclf.recipes.classify import train
        from rnnclf.training.session import TrainingStopped

        values = {d.key: d.suggest(trial) for d in self.space}
        run_dir = self.out / TRIALS_DIR / f"trial-{trial.number:04d}"
        for key, value in {"host": HOST, "pid": os.getpid(), "run_dir": str(run_dir.resolve())}.items():
            trial.set_user_attr(key, value)
        self.log(f"trial {trial.number}: " + ", ".join(f"{key} {show_value(value)}" for key, value in values.items()))
        try:
            config = apply_values(self.base, values | {"output.run_dir": str(run_dir)}, "")
        except RnnclfError as exc:  # pruned, not failed: TPE then counts the region as bad and moves away
            trial.set_user_attr("stopped", f"{IMPOSSIBLE}: {str(exc).removeprefix(': ')}")
            self.log(f"trial {trial.number}: {trial.user_attrs['stopped']}")
            raise optuna.TrialPruned() from None
        watch = EpochWatch(self, trial, config.train.epochs)
        lines: list[str] = []
        distributed.broadcast(config_to_dict(config), self.group, self.channel)  # --nproc: the other processes
        try:
            summary = train(config, self.command, lines.append, on_epoch=watch, trial=True)
        except (TrainingStopped, KeyboardInterrupt):
            trial.set_user_attr("failure", "interrupted")
            rerun_failed(self.study, trial)  # the same values first, when the search goes on
            raise
        except torch.OutOfMemoryError:
            self.fail(trial, "out of memory")
        except RnnclfError as exc:
            self.fail(trial, str(exc))
        finally:
            if run_dir.is_dir():
                files.write_atomic(run_dir / "train.log", "".join(line + "\n" for line in lines).encode("utf-8"))
        trial.set_user_attr("best_epoch", summary["best_epoch"])
        trial.set_user_attr("epochs_run", summary["epochs_run"])
        self.log(
            f"trial {trial.number}: valid {self.metric} {watch.best:.4f} (epoch {summary['best_epoch']}) in "
            f"{format_duration(time.monotonic() - watch.started)}{self.best_so_far(watch.best)}"
        )
        return watch.best

    def fail(self, trial: optuna.Trial, reason: str) -> None:
        import torch

        trial.set_user_attr("failure", reason)
        if self.group.active:  # the trial's processes may have parted mid-step: no next trial on them
            raise RnnclfError(
                f"trial {trial.number} failed: {reason}; with --nproc a failed trial ends the tune (the study keeps "
                "it as failed; the same command goes on)"
            )
        self.log(f"trial {trial.number} failed: {reason}")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise TrialFailed(reason)

    def best_so_far(self, value: float) -> str:
        try:
            best = self.study.best_trial
        except ValueError:
            return ""
        better = value > best.value if self.maximize else value < best.value
        return "  *best so far" if better else f"; best so far: trial {best.number}, {best.value:.4f}"

    # budget and stopping

    def record_time(self) -> None:
        """This session's seconds, in the study: a continued tune (and every worker) counts what the others spent."""
        self.study.set_user_attr(self.session_key, time.monotonic() - self.started)

    def spent(self) -> float:
        attrs = self.study.user_attrs
        others = sum(v for k, v in attrs.items() if k.startswith("seconds ") and k != self.session_key)
        return others + time.monotonic() - self.started

    def remaining(self) -> float:
        return self.settings.budget - self.spent() if self.settings.budget is not None else float("inf")

    def trial_estimate(self) -> float | None:
        """What a whole trial takes: the median of the finished ones, or the measured config before any."""
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        seconds = [t.duration.total_seconds() for t in done if t.duration is not None]
        return statistics.median(seconds) if seconds else self.first_estimate

    def stop_reason(self) -> str | None:
        trials = self.study.get_trials(deepcopy=False)
        rerun = {t.user_attrs.get("rerun_of") for t in trials}
        finished = [t for t in trials if t.state.is_finished() and not was_interrupted(t, rerun) and not impossible(t)]
        if self.settings.trials is not None and len(finished) >= self.settings.trials:
            return f"{len(finished)} trials finished (--trials {self.settings.trials})"
        mine = [t for t in finished if t.user_attrs.get("pid") == os.getpid() and t.user_attrs.get("host") == HOST]
        recent = mine[-FAILURES_IN_A_ROW:]  # this session's: a continued study starts afresh
        if len(recent) == FAILURES_IN_A_ROW and all(t.state == TrialState.FAIL for t in recent):
            raise RnnclfError(
                f"the last {FAILURES_IN_A_ROW} trials failed, the last with: {recent[-1].user_attrs.get('failure')}; "
                "see trials.csv and each trial's train.log"
            )
        if self.settings.budget is None:
            return None
        remaining, estimate = self.remaining(), self.trial_estimate()
        if remaining <= 0:
            return f"the budget of {format_duration(self.settings.budget)} is spent"
        if estimate is not None and remaining < estimate:
            return (
                f"{format_duration(remaining)} of the budget left, and a trial takes about {format_duration(estimate)}"
            )
        return None

    def tidy(self) -> None:
        """Weights only for the best few finished trials."""
        finished = [t for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()]
        complete = [t for t in finished if t.state == TrialState.COMPLETE]
        ranked = sorted(complete, key=lambda t: t.value, reverse=self.maximize)
        kept = {t.number for t in ranked[: self.settings.keep]}
        for trial in finished:
            run_dir = Path(trial.user_attrs.get("run_dir", ""))
            if trial.user_attrs.get("run_dir") and trial.number not in kept:  # here, or on another machine
                (run_dir / files.WEIGHTS).unlink(missing_ok=True)


def run_tune(settings: TuneSettings, command: list[str], log: Log) -> dict[str, Any] | None:
    """The tune on this process: the search itself, or with --nproc on a rank other than 0 its share of each
    trial's training. Returns the summary on rank 0. With --nproc, rank 0 sends the end of the search when it ends
    by itself; on an error or a signal every process stops (torchrun ends the others)."""
    from rnnclf.device.precision import choose_device

    group = distributed.from_env()
    if not group.active:
        return Tuner(settings, command, log, group).run()
    distributed.start(group, choose_device(settings.base.train.device))
    try:
        # rank 0 measures, opens the study and writes outputs between trials, while the others wait on this group
        channel = distributed.new_channel(WAIT_FOR_RANK_0)
        if not group.main:
            follow(group, channel)
            return None
        tuner = Tuner(settings, command, log, group)
        tuner.channel = channel
        summary = tuner.run()
        distributed.broadcast(None, group, channel)
        return summary
    finally:
        distributed.stop(group)
