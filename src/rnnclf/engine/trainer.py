"""Training: data -> tokenizer -> model -> epochs -> run directory. Read `Trainer.run` top to bottom.

setup() prepares this process (threads, precision, seeds), the data and the model; start() writes a new run
directory or restores a saved state; each epoch is run_epoch() then end_epoch() (validation, best weights,
metrics line, early stopping, state); finish() evaluates the best weights and writes metrics.json.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rnnclf import files, machine
from rnnclf.batching import bucket_by_length, iterate
from rnnclf.calibration import calibrate, calibration_report, describe_calibration, fit_calibration
from rnnclf.config import Config, classifier_arguments, config_to_dict
from rnnclf.embeddings import load_pretrained
from rnnclf.engine import checkpoint, distributed, session
from rnnclf.engine.checkpoint import Progress
from rnnclf.engine.device import ThreadGovernor, choose_device, choose_precision, seed_everything
from rnnclf.engine.distributed import Group
from rnnclf.engine.inference import objective, predict_logits, probabilities, scores
from rnnclf.engine.step import NonFiniteLoss, build_step, class_weight_tensor
from rnnclf.errors import RnnclfError
from rnnclf.finetune import frozen_parameters, load_language_model, take_weights, unfreezing_note
from rnnclf.machine import available_cores
from rnnclf.model import RNNClassifier, count_parameters
from rnnclf.multilabel import (
    AUTO_RULES,
    choose_thresholds,
    describe_label_sets,
    headline,
    label_prior_logits,
    thresholds_file_payload,
)
from rnnclf.plots import log_epoch, log_step, require_tensorboard, save_curves, tensorboard
from rnnclf.rundir import Run, load_run
from rnnclf.tensor_files import load_tensors, save_tensors
from rnnclf.token_cache import prepare
from rnnclf.tokenizer import vocabulary

Log = Callable[[str], None]
# called at the end of each epoch with the epoch, its validation score and whether it was the last (the epochs are
# done, or early stopping); what it raises stops the run (rnnclf tune prunes a trial so)
EpochHook = Callable[[int, float, bool], None]


def train(
    config: Config,
    command: list[str] | None = None,
    log: Log = print,
    on_epoch: EpochHook | None = None,
    trial: bool = False,
) -> dict[str, Any]:
    """Train a model as the config says and write a new run directory. Returns the metrics summary.

    A `trial` of rnnclf tune leaves the test split alone (trials choose on validation only), saves no training
    state (a stopped trial is run again, not resumed) and draws its curves once, at the end."""
    run_dir = Path(config.output.run_dir)
    if distributed.from_env().main:  # the other processes of a distributed run find rank 0's directory
        session.check_run_dir(run_dir)
    return _fit(config, run_dir, None, command or sys.argv, log, on_epoch, trial)


def resume(run_dir: Path, command: list[str] | None = None, log: Log = print) -> dict[str, Any]:
    """Continue a run from its last saved state, or from its start when it stopped before its first save
    (the run's own config and tokenizer; same data)."""
    if not run_dir.is_dir():
        raise RnnclfError(f"{run_dir}: run directory not found")
    if not (run_dir / files.CONFIG).exists():
        raise RnnclfError(
            f"{run_dir}: no saved training state to resume from (no {files.CONFIG}, no {files.STATE}/{checkpoint.STATE_FILE})"
        )
    if (run_dir / files.LANGUAGE_MODEL).exists():
        raise RnnclfError(f"{run_dir}: a language model; continue it with rnnclf pretrain --resume {run_dir}")
    run = load_run(run_dir, weights=False)
    if (run_dir / files.METRICS).exists():  # written last, when training and the final evaluation are done
        raise RnnclfError(
            f"{run_dir}: this run has finished; nothing to resume (to train longer, start a new run with more "
            "train.epochs)"
        )
    return _fit(run.config, run_dir, run, command or sys.argv, log)


def _fit(
    config: Config,
    run_dir: Path,
    previous: Run | None,
    command: list[str],
    log: Log,
    on_epoch: EpochHook | None = None,
    trial: bool = False,
) -> dict[str, Any]:
    """Set up this process (and the process group when torchrun started several), then train."""
    if config.output.tensorboard:
        require_tensorboard()  # before any work: a missing package is a mistake in the config
    group = distributed.from_env()
    owned = not distributed.joined()  # rnnclf tune --nproc holds one group for all its trials
    device = distributed.start(group, choose_device(config.train.device))
    try:
        trainer = Trainer(config, run_dir, previous, command, log if group.main else lambda message: None)
        trainer.on_epoch, trainer.trial = on_epoch, trial
        return trainer.run(group, device)
    except Exception as exc:
        if group.active and distributed.is_lost_peer(exc):
            command = f"rnnclf train --resume {run_dir} --nproc {group.world}"
            raise distributed.lost_peers(exc, group, command, checkpoint.has_state(run_dir)) from None
        raise
    finally:
        if owned:
            distributed.stop(group)


class Trainer:
    """One training session of one process: a new run, or a resumed one (`previous`)."""

    def __init__(self, config: Config, run_dir: Path, previous: Run | None, command: list[str], log: Log) -> None:
        self.config, self.tc, self.run_dir, self.previous = config, config.train, run_dir, previous
        self.multi_label = config.data.multi_label
        self.command, self.log = command, log
        self.plotting = True
        self.best_valid_logits: np.ndarray | None = None
        self.on_epoch: EpochHook | None = None
        self.trial = False
        self.env_noted: dict | None = None  # the last thread change written to env.json
        # a run stopped before its first save starts again from the beginning, with its own tokenizer
        self.fresh = previous is None or not checkpoint.has_state(run_dir)

    def run(self, group: Group, device: torch.device) -> dict[str, Any]:
        self.setup(group, device)
        self.start()
        with (
            session.stop_on_signals(escalate=not group.active) as stop,
            tensorboard(self.config.output.tensorboard and group.main, self.run_dir, self.resumed_at) as board,
        ):
            while self.progress.epoch <= self.tc.epochs:
                epoch_seconds, session_tokens = self.run_epoch(stop, board)
                self.end_epoch(epoch_seconds, session_tokens, board)
        return self.finish()

    # setting up

    def setup(self, group: Group, device: torch.device) -> None:
        """This process's threads, precision and seed; the data; the model and its training step."""
        tc = self.tc
        self.group, self.device = group, device
        cores = max(1, available_cores() // group.local_world)
        # distributed: each process keeps its share of the cores (the others are its own peers, not load)
        share = f"its share of the cores among {group.world} processes" if group.active else ""
        self.governor = ThreadGovernor(cores, tc.num_threads or (cores if group.active else None), self.log, share)
        self.precision = choose_precision(device, tc.amp)
        seed_everything(tc.seed)
        # model.init: the language model's tokenizer and weights (checked before any work)
        self.language_model = load_language_model(self.config) if self.config.model.init and self.fresh else None
        self.prepare_data()
        self.build_model()
        sizes = self.progress.summary["sizes"]
        steps_per_epoch = distributed.steps_per_epoch(math.ceil(sizes["train"] / tc.batch_size), group)
        self.class_weights = class_weight_tensor(tc.class_weights, self.labels, self.data.targets["train"])
        self.step = build_step(
            self.model,
            self.net,
            tc,
            self.class_weights,
            steps_per_epoch * tc.epochs,
            device,
            self.precision,
            self.multi_label,
        )

    def prepare_data(self) -> None:
        """Token ids of every split (rank 0 fills the token cache; the other processes then read it)."""
        started = time.perf_counter()
        if not self.group.main:
            distributed.barrier(self.group)
        given = self.previous.tokenizer if self.previous else None
        self.data = prepare(self.config, self.language_model.tokenizer if self.language_model else given)
        if self.group.main:
            distributed.barrier(self.group)
        self.log(
            f"tokens: {'from the cache' if self.data.cached else 'tokenized and cached'} in "
            f"{time.perf_counter() - started:.1f}s"
        )
        self.threads, why = self.governor.start()  # the sample of the machine's load spans the data's preparation
        device, group = self.device, self.group
        self.log(
            f"device: {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
            f"{self.threads} CPU thread{'s' if self.threads > 1 else ''} ({why}), mixed precision: "
            f"{self.precision.describe()}"
            + (f"; {machine.passive_wait_reason}" if machine.passive_wait_reason else "")
            + (f", {group.world} processes ({'nccl' if device.type == 'cuda' else 'gloo'})" if group.active else "")
        )
        self.labels = self.data.labels
        if self.previous and self.previous.labels != self.labels:
            raise RnnclfError(f"{self.run_dir}: the data's labels changed since this run started; cannot resume")
        sizes = {name: len(enc) for name, enc in self.data.encoded.items()}
        self.log(
            "data: "
            + ", ".join(f"{name} {size:,}" for name, size in sizes.items())
            + (f" texts, {len(self.labels)} {'labels' if self.multi_label else 'classes'}")
            + (f" ({describe_label_sets(self.data.targets)})" if self.multi_label else "")
        )
        self.vocab = vocabulary(self.data.tokenizer)
        fitted = (
            f"from the language model {self.config.model.init}"
            if self.config.model.init
            else "fitted on the training split"
        )
        self.log(f"vocabulary: {len(self.vocab):,} tokens ({self.config.tokenizer.kind}), {fitted}")
        self.progress = Progress(summary={"vocab_size": len(self.vocab), "sizes": sizes})

    def build_model(self) -> None:
        self.model = RNNClassifier(len(self.vocab), len(self.labels), **classifier_arguments(self.config))
        if self.config.embedding.pretrained and self.fresh:
            self.load_vectors()
        if self.language_model is not None:
            take_weights(self.model, self.language_model)
            self.log(f"model: embedding and recurrent layers from the language model {self.language_model.path}")
            for note in self.language_model.notes:
                self.log(note)
        note = unfreezing_note(self.model, self.tc.gradual_unfreezing, self.tc.epochs)
        if note:
            self.log(note)
        if self.multi_label and self.fresh:
            # each label starts at its training frequency rather than 1/2: the first steps learn the texts, not
            # that almost every label is almost always absent
            with torch.no_grad():
                self.model.head.bias.copy_(torch.from_numpy(label_prior_logits(self.data.targets["train"])))
        self.model.to(self.device)
        # DDP copies rank 0's weights to all; each rank then draws its own dropout masks
        self.net = self.model
        if self.group.active:
            ids = [self.device] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            torch.manual_seed(self.tc.seed + self.group.rank)
        self.progress.summary["parameters"] = count_parameters(self.model)
        trainable = self.progress.summary["parameters"]["trainable"]
        self.log(f"model: {self.config.model.encoder}, {trainable:,} trainable parameters")

    def load_vectors(self) -> None:
        embedding = self.config.embedding
        counts = np.bincount(self.data.encoded["train"].ids, minlength=len(self.vocab))
        vectors = load_pretrained(embedding.pretrained, self.vocab, embedding.dim, counts, self.tc.seed)
        with torch.no_grad():
            self.model.embedding.weight.copy_(torch.from_numpy(vectors.matrix))
        self.progress.summary["embedding"] = {"pretrained": embedding.pretrained, **vectors.coverage()}
        self.log(vectors.describe())

    def start(self) -> None:
        """A new run directory; or a resumed run's saved state put back (its start, when it stopped before its
        first save)."""
        self.resumed_at = None
        if self.previous is None:
            self.env = self.new_environment()
            self.governor.changes = self.env["thread_changes"]  # env.json is rewritten at each save when it grows
            if self.group.main:  # everything is validated: only now does the run directory come into being
                contents = (config_to_dict(self.config), self.labels, self.data.tokenizer, self.env)
                session.create_run_dir(self.run_dir, lambda folder: session.write_run_files(folder, *contents))
            self.log(f"run directory: {self.run_dir}")
            return
        if not self.fresh:
            state, step = checkpoint.load_state(self.run_dir / files.STATE), self.step
            args = (step.optimizer, step.scheduler, step.scaler, self.device, self.group)
            self.progress = checkpoint.restore_state(state, self.model, *args)
        p = self.progress
        self.env = session.read_environment(self.run_dir) or self.new_environment()
        resumed = {"at": session.now(), "epoch": p.epoch, "batch": p.batch, "threads": self.threads}
        resumed |= {"command": self.command, "processes": self.group.world}
        self.env.setdefault("resumed", []).append(resumed)
        self.governor.changes = self.env.setdefault("thread_changes", [])
        if self.group.main:
            session.keep_epochs_before(self.run_dir / files.METRICS_LOG, p.epoch)
            files.write_json(self.run_dir / files.ENV, self.env)
        self.resumed_at = p.step
        where = (
            "from the start: it stopped before its first save"
            if self.fresh
            else f"at epoch {p.epoch}, batch {p.batch} (step {p.step})"
        )
        self.log(f"resuming {self.run_dir} {where}")

    def new_environment(self) -> dict[str, Any]:
        precision, world = self.precision.describe(), self.group.world
        env = session.environment(self.device, self.threads, precision, self.tc.seed, self.command, world)
        return env | {"thread_changes": []}

    def save(self) -> None:
        # every rank's random state and running sums, so that a resumed distributed run goes on as each rank was
        ranks = distributed.gather(checkpoint.rank_state(self.progress), self.group) if self.group.active else None
        if self.group.main:
            step = self.step
            state = checkpoint.training_state(self.model, step.optimizer, step.scheduler, step.scaler, self.progress)
            checkpoint.save_state(self.run_dir / files.STATE, state | {"ranks": ranks})
            if self.governor.changes and self.governor.changes[-1] is not self.env_noted:  # threads changed
                files.write_json(self.run_dir / files.ENV, self.env)
                self.env_noted = self.governor.changes[-1]

    # one epoch

    def run_epoch(self, stop: Any, board: Any) -> tuple[float, int]:
        """Train on this epoch's remaining batches; returns the epoch's seconds (this session's part) and tokens."""
        p, tc, group = self.progress, self.tc, self.group
        self.model.train()
        self.step.frozen = frozen_parameters(self.model, p.epoch, tc.gradual_unfreezing)
        train = self.data.encoded["train"]
        batches = distributed.shard(bucket_by_length(train.lengths, tc.batch_size, tc.seed, p.epoch), group)
        # session: since the last save (adds up to train_seconds); epoch_start: this session's part of the epoch
        session_start = epoch_start = time.perf_counter()
        session_tokens = 0
        bar = tqdm(
            iterate(train, batches[p.batch :], self.data.targets["train"]),
            total=len(batches),
            initial=p.batch,
            desc=f"epoch {p.epoch}/{tc.epochs}",
            leave=False,
            disable=None if group.main else True,
            dynamic_ncols=True,
        )
        for batch in bar:
            self.governor.check(p.step)
            loss_value, correct = self.take_step(batch)
            p.count(len(batch.index), batch.num_tokens, loss_value, correct)
            session_tokens += batch.num_tokens
            if board is not None:
                log_step(board, p.step, loss_value, self.step.optimizer.param_groups[0]["lr"])
            speed = session_tokens / (time.perf_counter() - epoch_start)
            bar.set_postfix(
                loss=f"{p.total_loss / p.seen:.4f}",
                acc=f"{p.correct / p.seen:.3f}",
                tok_s=f"{speed:,.0f}",
                refresh=False,
            )
            halt = distributed.any_rank(stop.signum is not None, group, self.device)  # all ranks stop together
            if halt or (tc.save_every and p.step % tc.save_every == 0):
                p.seconds += time.perf_counter() - session_start
                session_start = time.perf_counter()
                if not self.trial:
                    self.save()
                if halt:
                    bar.close()
                    self.stopped(stop.signum)
        bar.close()
        p.seconds += time.perf_counter() - session_start
        return time.perf_counter() - epoch_start, session_tokens

    def take_step(self, batch: Any) -> tuple[float, int]:
        try:
            return self.step(batch)
        except NonFiniteLoss as exc:
            saved = (self.run_dir / files.STATE).exists()
            kept = "the last saved state and best weights are kept" if saved else "nothing was saved yet"
            raise RnnclfError(
                f"training loss became {exc.value} at epoch {self.progress.epoch}, step {self.progress.step + 1}; "
                f"lower train.lr or set train.grad_clip" + ("" if self.trial else f" ({kept} in {self.run_dir})")
            ) from None

    def stopped(self, signum: int | None) -> None:
        resume_option = f" --nproc {self.group.world}" if self.group.active else ""
        raise session.TrainingStopped(
            signum or signal.SIGTERM,
            f"stopped at epoch {self.progress.epoch}, step {self.progress.step}; state saved. "
            f"Continue with: rnnclf train --resume {self.run_dir}{resume_option}",
        )

    def logits(self, split: str) -> np.ndarray:
        """The model's logits on a split; with several processes each predicts a share."""
        encoded, dtype = self.data.encoded[split], self.precision.autocast
        if not self.group.active:
            return predict_logits(self.model, encoded, self.device, dtype=dtype)
        share = np.arange(len(encoded))[self.group.rank :: self.group.world]
        parts = distributed.gather(
            (share, predict_logits(self.model, encoded.take(share), self.device, dtype=dtype)), self.group
        )
        logits = np.zeros((len(encoded), len(self.labels)), dtype=np.float32)
        for index, part in parts:
            logits[index] = part
        return logits

    def scores(
        self,
        logits: np.ndarray,
        split: str,
        thresholds: np.ndarray | None = None,
        temperature: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Metrics on a split (multi-label: at 0.5 unless `thresholds`) of the logits divided by `temperature`, with
        `objective`: the training loss function (label smoothing and class weights included) on the model's logits,
        comparable with train_loss."""
        targets = self.data.targets[split]
        report = scores(calibrate(logits, temperature), targets, self.labels, thresholds)
        report["objective"] = objective(logits, targets, self.class_weights, self.tc.label_smoothing)
        return report

    def end_epoch(self, epoch_seconds: float, session_tokens: int, board: Any) -> dict[str, Any]:
        """Validate, keep the best weights, write the epoch's line, decide on early stopping, save the state."""
        p, tc = self.progress, self.tc
        epoch, valid_start = p.epoch, time.perf_counter()
        logits = self.logits("valid")
        valid = self.scores(logits, "valid")
        valid_seconds = time.perf_counter() - valid_start
        score = valid[tc.metric]
        if isinstance(self.step.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.step.scheduler.step(score)
        improved = p.best is None or (score < p.best if tc.metric == "loss" else score > p.best)
        if improved:
            p.best, p.best_epoch, p.stale = score, p.epoch, 0
            self.best_valid_logits = logits  # finish() reports on them instead of predicting valid again
            if self.group.main:
                save_tensors(self.run_dir / files.WEIGHTS, self.model.state_dict(), metadata={"epoch": str(p.epoch)})
        else:
            p.stale += 1
        record = self.epoch_record(valid, epoch_seconds, session_tokens) | {"valid_seconds": valid_seconds}
        if self.group.main:
            files.append_line(self.run_dir / files.METRICS_LOG, record)
        if board is not None:
            log_epoch(board, record)
        if self.plotting and self.group.main and not self.trial:  # until matplotlib is found missing (said once)
            self.plotting = save_curves(self.run_dir, tc.metric, self.log)
        shown = f"micro F1 {valid['micro_f1']:.4f}" if self.multi_label else f"acc {valid['accuracy']:.4f}"
        self.log(
            f"epoch {p.epoch}/{tc.epochs}  train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}  "
            f"valid loss {valid['loss']:.4f} {shown} macro F1 {valid['macro_f1']:.4f}  "
            f"{record['tokens_per_s']:,.0f} tok/s  {epoch_seconds:.1f}s{'  *best' if improved else ''}"
        )
        stopping = tc.early_stopping is not None and p.stale >= tc.early_stopping
        p.next_epoch(stopping, tc.epochs)
        if not self.trial:
            self.save()
        if stopping:
            self.log(f"early stopping: no better valid {tc.metric} for {p.stale} epochs")
        if self.on_epoch is not None:
            self.on_epoch(epoch, score, p.epoch > tc.epochs)
        return record

    def epoch_record(self, valid: dict[str, Any], epoch_seconds: float, session_tokens: int) -> dict[str, Any]:
        p = self.progress
        total_loss, correct, seen, tokens = distributed.sum_all(
            [p.total_loss, p.correct, p.seen, session_tokens], self.group, self.device
        )
        return {
            "epoch": p.epoch,
            "step": p.step,
            "train_loss": total_loss / seen,
            "train_accuracy": correct / seen,
            "valid_loss": valid["loss"],
            "valid_objective": valid["objective"],
            "valid_accuracy": valid["accuracy"],
            "valid_macro_f1": valid["macro_f1"],
            **(
                {"valid_micro_f1": valid["micro_f1"], "valid_samples_f1": valid["samples_f1"]}
                if self.multi_label
                else {}
            ),
            "lr": self.step.optimizer.param_groups[0]["lr"],
            "tokens_per_s": tokens / max(epoch_seconds, 1e-9),  # all processes together
            "epoch_seconds": epoch_seconds,
        }

    # the end

    def finish(self) -> dict[str, Any]:
        """The best weights on valid (and test): metrics.json, env.json's end time. Returns the summary."""
        p = self.progress
        splits = ["valid"] + (["test"] if "test" in self.data.encoded and not self.trial else [])
        known = {"valid": self.best_valid_logits} if self.best_valid_logits is not None else {}
        if any(split not in known for split in splits):  # the best weights, exactly as saved
            self.model.load_state_dict(load_tensors(self.run_dir / files.WEIGHTS))
        reports = {}
        for split in splits:
            logits = known[split] if split in known else self.logits(split)
            if split == "valid":  # the temperature first: thresholds are chosen on calibrated probabilities
                temperature = self.fit_calibration(logits)
                thresholds = self.choose_thresholds(calibrate(logits, temperature)) if self.multi_label else None
            reports[split] = self.scores(logits, split, thresholds, temperature)
            figures = calibration_report(logits, temperature, self.data.targets[split], self.labels)
            reports[split]["calibration"] = {k: v for k, v in figures.items() if not k.startswith("reliability")}
            if thresholds is not None:  # beside them, each threshold rule's figures (fixed: one global 0.5)
                reports[split]["by_rule"] = {
                    rule: headline(self.scores(logits, split, cut, temperature))
                    for rule, cut in self.rule_thresholds.items()
                }
                reports[split]["at_0.5"] = reports[split]["by_rule"]["fixed"]
        test = reports.get("test")
        if test is not None:
            self.log(f"test (best epoch {p.best_epoch}): {_describe_test(test)}")
        distributed.barrier(self.group)  # rank 0 has written the last epoch's line
        history = [
            json.loads(line) for line in (self.run_dir / files.METRICS_LOG).read_text(encoding="utf-8").splitlines()
        ]
        summary = {
            **p.summary,
            "best_epoch": p.best_epoch,
            "epochs_run": len(history),
            "metric": self.tc.metric,
            "train_seconds": p.seconds,
            "tokens_per_s": sum(r["tokens_per_s"] for r in history) / len(history),
            **({"multi_label": True, "thresholds": self.threshold_info} if thresholds is not None else {}),
            "valid": reports["valid"],
            "test": test,
        }
        if self.trial and self.plotting and self.group.main:  # a trial draws its curves once
            save_curves(self.run_dir, self.tc.metric, self.log)
        if self.group.main:
            files.write_json(self.run_dir / files.METRICS, summary)
            self.env["finished"] = session.now()
            files.write_json(self.run_dir / files.ENV, self.env)
        return summary

    def fit_calibration(self, valid_logits: np.ndarray) -> np.ndarray | None:
        """The temperature (train.calibration), fitted on the best weights' validation logits, written to
        calibration.json; None when the config asks for none."""
        if self.tc.calibration == "none":
            return None
        targets = self.data.targets["valid"]
        temperature, payload = fit_calibration(valid_logits, targets, self.labels, self.tc.threshold_min_support)
        if self.group.main:
            files.write_json(self.run_dir / files.CALIBRATION, payload)
        figures = payload["valid"] | {"temperature": payload["temperature"]}
        self.log(f"calibration on valid: {describe_calibration(figures)}, written to {files.CALIBRATION}")
        if "kept_at_1" in payload:
            self.log(f"rnnclf: warning: calibration: {payload['kept_at_1']}")
        return temperature

    def choose_thresholds(self, valid_logits: np.ndarray) -> np.ndarray:
        """Multi-label: each label's decision threshold, chosen on the validation split (train.thresholds) from its
        calibrated logits, written to thresholds.json."""
        tc = self.tc
        valid = probabilities(valid_logits, True), self.data.targets["valid"], self.labels
        thresholds, info = choose_thresholds(*valid, tc.thresholds, tc.threshold_min_support, tc.threshold_floor)
        self.threshold_info = info
        self.rule_thresholds = {
            rule: choose_thresholds(*valid, rule, tc.threshold_min_support, tc.threshold_floor)[0]
            for rule in AUTO_RULES
        }
        if self.group.main:
            files.write_json(self.run_dir / files.THRESHOLDS, thresholds_file_payload(self.labels, thresholds, info))
        self.log(f"thresholds: {info['description']}, written to {self.run_dir / files.THRESHOLDS}")
        return thresholds


def _describe_test(test: dict[str, Any]) -> str:
    if "micro_f1" not in test:
        return (
            f"accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}, weighted F1 {test['weighted_f1']:.4f}"
            f"; {describe_calibration(test['calibration'])}"
        )
    plain = test.get("at_0.5")
    at_half = f" (at 0.5: {plain['micro_f1']:.4f} / {plain['macro_f1']:.4f})" if plain else ""
    return (
        f"micro F1 {test['micro_f1']:.4f}, macro F1 {test['macro_f1']:.4f}{at_half}, subset accuracy "
        f"{test['accuracy']:.4f}; {describe_calibration(test['calibration'])}"
    )
