"""rnnclf pretrain: a recurrent language model on plain text, written as a run directory a classifier starts from.

Read `Pretrainer.run` top to bottom: setup() (threads, texts, tokenizer, model, step), start() (a new run
directory, or the saved state put back), then per epoch run_epoch() (bucketed batches of texts, each read in
windows of pretrain.bptt tokens with the state carried between them: one optimizer step per window) and
end_epoch() (validation perplexity, best weights, metrics line, curves, state), and finish() (metrics.json).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rnnclf import files, machine
from rnnclf.batching import bucket_by_length, collate, sequential_batches
from rnnclf.config import SECTIONS, Config, classifier_arguments, config_to_dict, parse_config, read_yaml
from rnnclf.data.corpus import load_corpus
from rnnclf.data.unlabelled import read_unlabelled
from rnnclf.embeddings import load_pretrained
from rnnclf.engine import checkpoint, distributed, session
from rnnclf.engine.checkpoint import Progress
from rnnclf.engine.device import ThreadGovernor, choose_device, choose_precision, seed_everything
from rnnclf.engine.distributed import Group
from rnnclf.engine.step import apply_gradients, build_optimizer, build_scheduler
from rnnclf.errors import RnnclfError
from rnnclf.language_model import LanguageModel, detach, direction_streams, windows
from rnnclf.machine import available_cores
from rnnclf.model import count_parameters
from rnnclf.plots import save_curves
from rnnclf.tensor_files import save_tensors
from rnnclf.tokenizer import encode, fit_tokenizer, load_tokenizer, vocabulary


def check_pretrainable(config: Config, source: Path | str) -> None:
    """The encoders a language model can pretrain for a classifier: one line naming the key otherwise."""
    model = config.model
    if model.encoder == "bag":
        raise RnnclfError(f"{source}: model.encoder bag has no recurrent layers to pretrain; use lstm, gru or rnn")
    if model.bidirectional and model.num_layers > 1:
        raise RnnclfError(
            f"{source}: a bidirectional classifier's second layer reads both directions of the first, which a "
            "language model cannot (the backward states have seen the next token); pretrain model.num_layers 1 or "
            "model.bidirectional false"
        )
    if model.init is not None:
        raise RnnclfError(f"{source}: model.init is for classifiers; a language model starts from scratch")
    train = config.train
    for key, value, default in (("lr_decay", train.lr_decay, 1.0), ("gradual_unfreezing", train.gradual_unfreezing, 0)):
        if value != default:
            raise RnnclfError(
                f"{source}: train.{key} is for fine-tuning a classifier (model.init); a language model trains all "
                f"its layers at train.lr, so remove it here"
            )


# classifier keys a language model has no use for: a value other than the default is a warning
UNUSED = (("train", "label_smoothing"), ("train", "class_weights"), ("train", "metric"), ("model", "pooling"))


def unused_settings(config: Config) -> list[str]:
    changed = [
        (section, key)
        for section, key in UNUSED
        if getattr(getattr(config, section), key) != SECTIONS[section].model_fields[key].default
    ]
    return [f"{section}.{key} does nothing in rnnclf pretrain (a classifier setting)" for section, key in changed]


def pretrain(config: Config, command: list[str] | None = None, log=print) -> dict[str, Any]:
    run_dir = Path(config.output.run_dir)
    if distributed.from_env().main:
        session.check_run_dir(run_dir)
    return _fit(config, run_dir, False, command or sys.argv, log)


def resume_pretrain(run_dir: Path, command: list[str] | None = None, log=print) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise RnnclfError(f"{run_dir}: run directory not found")
    if not (run_dir / files.LANGUAGE_MODEL).exists():
        raise RnnclfError(f"{run_dir}: not an rnnclf pretrain run directory (no {files.LANGUAGE_MODEL})")
    if (run_dir / files.METRICS).exists():
        raise RnnclfError(f"{run_dir}: this language model has finished; nothing to resume")
    raw = read_yaml(run_dir / files.CONFIG, "run config")
    return _fit(parse_config(raw, run_dir / files.CONFIG), run_dir, True, command or sys.argv, log)


def _fit(config: Config, run_dir: Path, resuming: bool, command: list[str], log) -> dict[str, Any]:
    group = distributed.from_env()
    device = distributed.start(group, choose_device(config.train.device))
    try:
        return Pretrainer(config, run_dir, resuming, command, log if group.main else lambda message: None).run(
            group, device
        )
    except Exception as exc:
        if group.active and distributed.is_lost_peer(exc):
            again = f"rnnclf pretrain --resume {run_dir} --nproc {group.world}"
            raise distributed.lost_peers(exc, group, again, checkpoint.has_state(run_dir)) from None
        raise
    finally:
        distributed.stop(group)


class Pretrainer:
    def __init__(self, config: Config, run_dir: Path, resuming: bool, command: list[str], log) -> None:
        self.config, self.tc, self.run_dir, self.resuming = config, config.train, run_dir, resuming
        self.command, self.log = command, log
        self.plotting = True
        self.saved = resuming and checkpoint.has_state(run_dir)

    def run(self, group: Group, device: torch.device) -> dict[str, Any]:
        self.setup(group, device)
        self.start()
        with session.stop_on_signals(escalate=not group.active) as stop:
            while self.progress.epoch <= self.tc.epochs:
                seconds, tokens = self.run_epoch(stop)
                self.end_epoch(seconds, tokens)
        return self.finish()

    # setting up

    def setup(self, group: Group, device: torch.device) -> None:
        self.group, self.device = group, device
        cores = max(1, available_cores() // group.local_world)
        share = f"its share of the cores among {group.world} processes" if group.active else ""
        self.governor = ThreadGovernor(cores, self.tc.num_threads or (cores if group.active else None), self.log, share)
        self.precision = choose_precision(device, self.tc.amp)
        seed_everything(self.tc.seed)
        self.read_texts()
        threads, why = self.governor.start()
        self.log(
            f"device: {device}, {threads} CPU thread{'s' if threads > 1 else ''} ({why}), mixed precision: "
            f"{self.precision.describe()}"
            + (f"; {machine.passive_wait_reason}" if machine.passive_wait_reason else "")
            + (f", {group.world} processes" if group.active else "")
        )
        self.threads = threads
        self.build_model()

    def read_texts(self) -> None:
        """The training split's texts and data.unlabelled's; the validation split's for perplexity. Never test's."""
        started = time.perf_counter()
        data = self.config.data
        corpus = load_corpus(data, self.tc.seed)
        texts = list(corpus.train.texts)
        self.sources = {"training split": len(texts)}
        for path in data.unlabelled:
            extra = read_unlabelled(path, data)
            self.sources[str(path)] = len(extra)
            texts += extra
        if self.resuming:
            self.tokenizer = load_tokenizer(self.run_dir / files.TOKENIZER)
        else:
            settings = self.config.tokenizer.model_dump()
            self.tokenizer = fit_tokenizer(texts, data.max_length, **settings)
        self.encoded = {"train": encode(self.tokenizer, texts), "valid": encode(self.tokenizer, corpus.valid.texts)}
        self.vocab = vocabulary(self.tokenizer)
        tokens = {name: int(len(enc.ids)) for name, enc in self.encoded.items()}
        self.sizes = {name: len(enc) for name, enc in self.encoded.items()}
        self.log(
            f"texts: {', '.join(f'{name} {count:,}' for name, count in self.sources.items())}; "
            f"{tokens['train']:,} training tokens, {tokens['valid']:,} validation tokens (the validation split); "
            f"vocabulary {len(self.vocab):,}; read in {time.perf_counter() - started:.1f}s"
        )
        self.tokens = tokens

    def build_model(self) -> None:
        config, tc = self.config, self.tc
        arguments = classifier_arguments(config)
        self.model = LanguageModel(len(self.vocab), softmax=config.pretrain.softmax, **arguments)
        counts = np.bincount(self.encoded["train"].ids, minlength=len(self.vocab))
        self.model.set_frequencies(counts)
        if config.embedding.pretrained and not self.saved:
            vectors = load_pretrained(config.embedding.pretrained, self.vocab, config.embedding.dim, counts, tc.seed)
            with torch.no_grad():
                self.model.embedding.weight.copy_(torch.from_numpy(vectors.matrix))
            self.log(vectors.describe())
        self.model.to(self.device)
        self.net = self.model
        if self.group.active:  # a window may leave an adaptive softmax cluster without a target: unused there
            ids = [self.device] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=True, broadcast_buffers=False
            )
            torch.manual_seed(tc.seed + self.group.rank)
        self.optimizer = build_optimizer(self.model, tc)
        # plateau watches the validation loss: lower is better, whatever train.metric says
        self.scheduler = build_scheduler(self.optimizer, tc.model_copy(update={"metric": "loss"}), self.total_steps())
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision.scaler and self.device.type == "cuda")
        self.parameters = count_parameters(self.model)
        kind = type(self.model.softmax[0]).__name__
        self.log(
            f"language model: {len(self.model.softmax)} direction(s) of {config.model.encoder}, output layer {kind}, "
            f"{self.parameters['trainable']:,} trainable parameters"
        )

    def total_steps(self) -> int:
        """Windows in all epochs (the schedule's length): each epoch's batches are known in advance."""
        bptt = self.config.pretrain.bptt
        plans = (self.epoch_plan(epoch) for epoch in range(1, self.tc.epochs + 1))
        return max(sum(math.ceil((width - 1) / bptt) for plan in plans for _, width in plan), 1)

    def epoch_plan(self, epoch: int) -> list[tuple[np.ndarray, int]]:
        """This process's batches of an epoch, each with the width it is padded to: with several processes, the
        widest of the batches the processes take at that step, so that all take the same number of windows."""
        lengths = self.encoded["train"].lengths
        batches = bucket_by_length(lengths, self.tc.batch_size, self.tc.seed, epoch)
        world = self.group.world if self.group.active else 1
        steps = -(-len(batches) // world)
        padded = batches + batches[: steps * world - len(batches)]  # as distributed.shard pads them
        widths = [max(int(lengths[b].max()) for b in padded[i * world : (i + 1) * world]) for i in range(steps)]
        return [(padded[i * world + self.group.rank], widths[i]) for i in range(steps)]

    def start(self) -> None:
        self.progress = Progress(summary={"vocab_size": len(self.vocab), "sizes": self.sizes})
        if not self.resuming:
            self.env = session.environment(
                self.device, self.threads, self.precision.describe(), self.tc.seed, self.command, self.group.world
            )
            if self.group.main:
                session.create_run_dir(self.run_dir, self.write_run_files)
            self.log(f"run directory: {self.run_dir}")
            return
        if self.saved:
            state = checkpoint.load_state(self.run_dir / files.STATE)
            processes = len(state.get("ranks") or [None])
            if processes != self.group.world:  # the schedule's length and the batches' widths depend on it
                raise RnnclfError(
                    f"{self.run_dir}: this language model trained in {processes} process(es); resume it with "
                    f"--nproc {processes}"
                )
            args = (self.optimizer, self.scheduler, self.scaler, self.device, self.group)
            self.progress = checkpoint.restore_state(state, self.model, *args)
        self.env = session.read_environment(self.run_dir) or {}
        p = self.progress
        self.env.setdefault("resumed", []).append({"at": session.now(), "epoch": p.epoch, "command": self.command})
        if self.group.main:
            session.keep_epochs_before(self.run_dir / files.METRICS_LOG, p.epoch)
            files.write_json(self.run_dir / files.ENV, self.env)
        where = f"at epoch {p.epoch}, batch {p.batch}" if self.saved else "from the start: no state was saved yet"
        self.log(f"resuming {self.run_dir} {where}")

    def write_run_files(self, folder: Path) -> None:
        files.write_yaml(folder / files.CONFIG, config_to_dict(self.config))
        files.write_atomic(folder / files.TOKENIZER, self.tokenizer.to_str(pretty=True).encode("utf-8"))
        files.write_json(folder / files.ENV, self.env)
        kind = type(self.model.softmax[0]).__name__
        info = {"directions": len(self.model.softmax), "output_layer": kind, "texts": self.sources}
        files.write_json(folder / files.LANGUAGE_MODEL, info | {"tokens": self.tokens})

    # one epoch

    def run_epoch(self, stop: Any) -> tuple[float, int]:
        p, tc, group = self.progress, self.tc, self.group
        self.model.train()
        plan = self.epoch_plan(p.epoch)
        start = last_save = time.perf_counter()
        tokens = 0
        bar = tqdm(
            plan[p.batch :],
            total=len(plan),
            initial=p.batch,
            desc=f"epoch {p.epoch}/{tc.epochs}",
            leave=False,
            disable=None if group.main else True,
            dynamic_ncols=True,
        )
        for index, width in bar:
            self.governor.check(p.step)
            steps_before = p.step
            tokens += self.train_batch(index, width)
            p.batch += 1
            speed = tokens / (time.perf_counter() - start)
            bar.set_postfix(ppl=f"{math.exp(min(p.total_loss / max(p.seen, 1), 50)):.1f}", tok_s=f"{speed:,.0f}")
            halt = distributed.any_rank(stop.signum is not None, group, self.device)
            # train.save_every counts steps (windows); the state is saved at the end of the batch that reaches one
            if halt or (tc.save_every and p.step // tc.save_every > steps_before // tc.save_every):
                p.seconds += time.perf_counter() - last_save
                last_save = time.perf_counter()
                self.save()
                if halt:
                    bar.close()
                    raise session.TrainingStopped(
                        stop.signum or signal.SIGTERM,
                        f"stopped at epoch {p.epoch}, step {p.step}; state saved. Continue with: rnnclf pretrain "
                        f"--resume {self.run_dir}" + (f" --nproc {group.world}" if group.active else ""),
                    )
        bar.close()
        p.seconds += time.perf_counter() - last_save
        return time.perf_counter() - start, tokens

    def streams(self, encoded: Any, index: np.ndarray, width: int | None = None) -> tuple[list[torch.Tensor], int]:
        """Each direction's token stream of a batch (padded to `width`), on the device; and its tokens."""
        batch = collate(encoded, index)
        ids = batch.ids if width is None else nn.functional.pad(batch.ids, (0, width - batch.ids.shape[1]))
        streams = direction_streams(ids, batch.lengths, self.model.encoder.bidirectional)
        return [s.to(self.device, non_blocking=True) for s in streams], batch.num_tokens

    def train_batch(self, index: np.ndarray, width: int) -> int:
        """Train on one batch of texts, window by window (one step each, the state carried); returns its tokens."""
        p, tc, group = self.progress, self.tc, self.group
        streams, tokens = self.streams(self.encoded["train"], index, width)
        states: list = [None] * len(streams)
        dtype = self.precision.autocast
        for inputs, targets in windows(streams, self.config.pretrain.bptt):
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                total, count, finals = self.net(inputs, targets, states)
            # the sums of all processes: each scales its loss so that DDP's mean of the gradients is the gradient
            # of the mean over all their tokens, and all of them see a non-finite loss together
            total_value, count_value = distributed.sum_all(
                torch.stack([total.detach(), count.to(total.dtype)]).tolist(), group, self.device
            )
            if not math.isfinite(total_value):
                raise RnnclfError(
                    f"language model loss became {total_value} at epoch {p.epoch}, step {p.step + 1}; lower train.lr "
                    "or set train.grad_clip"
                )
            loss = total * (group.world if group.active else 1) / max(count_value, 1.0)
            apply_gradients(loss, self.net, self.optimizer, self.scaler, self.scheduler, tc.grad_clip)
            states = detach(finals)
            p.step += 1
            p.total_loss += total_value  # all processes' sums: the same on each
            p.seen += int(count_value)
        p.tokens += tokens
        return tokens

    @torch.no_grad()
    def valid_loss(self) -> float:
        """Mean negative log-likelihood per token on the validation split; several processes share it."""
        self.model.eval()
        encoded, dtype, group = self.encoded["valid"], self.precision.autocast, self.group
        batches = sequential_batches(encoded.lengths, self.tc.batch_size)
        total = count = 0.0
        for index in batches[group.rank :: group.world] if group.active else batches:
            streams, _ = self.streams(encoded, index)
            states: list = [None] * len(streams)
            for inputs, targets in windows(streams, self.config.pretrain.bptt):
                with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                    part_total, part_count, states = self.model(inputs, targets, states)
                total += float(part_total)
                count += float(part_count)
        self.model.train()
        total, count = distributed.sum_all([total, count], group, self.device)
        return total / max(count, 1.0)

    def end_epoch(self, epoch_seconds: float, tokens: int) -> None:
        p, tc = self.progress, self.tc
        valid_start = time.perf_counter()
        valid = self.valid_loss()
        valid_seconds = time.perf_counter() - valid_start
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(valid)
        improved = p.best is None or valid < p.best
        if improved:
            p.best, p.best_epoch, p.stale = valid, p.epoch, 0
            if self.group.main:
                save_tensors(self.run_dir / files.WEIGHTS, self.model.state_dict(), metadata={"epoch": str(p.epoch)})
        else:
            p.stale += 1
        (all_tokens,) = distributed.sum_all([tokens], self.group, self.device)
        train_loss = p.total_loss / max(p.seen, 1)
        record = {
            "epoch": p.epoch,
            "step": p.step,
            "train_loss": train_loss,
            "train_perplexity": math.exp(min(train_loss, 50)),
            "valid_loss": valid,
            "valid_perplexity": math.exp(min(valid, 50)),
            "lr": self.optimizer.param_groups[0]["lr"],
            "tokens_per_s": all_tokens / max(epoch_seconds, 1e-9),
            "epoch_seconds": epoch_seconds,
            "valid_seconds": valid_seconds,
        }
        if self.group.main:
            files.append_line(self.run_dir / files.METRICS_LOG, record)
            if self.plotting:
                self.plotting = save_curves(self.run_dir, "perplexity", self.log)
        self.log(
            f"epoch {p.epoch}/{tc.epochs}  train perplexity {record['train_perplexity']:.1f}  valid perplexity "
            f"{record['valid_perplexity']:.1f}  {record['tokens_per_s']:,.0f} tok/s  {epoch_seconds:.1f}s"
            + ("  *best" if improved else "")
        )
        stopping = tc.early_stopping is not None and p.stale >= tc.early_stopping
        p.next_epoch(stopping, tc.epochs)
        self.save()
        if stopping:
            self.log(f"early stopping: no lower valid perplexity for {p.stale} epochs")

    def save(self) -> None:
        ranks = distributed.gather(checkpoint.rank_state(self.progress), self.group) if self.group.active else None
        if self.group.main:
            state = checkpoint.training_state(self.model, self.optimizer, self.scheduler, self.scaler, self.progress)
            checkpoint.save_state(self.run_dir / files.STATE, state | {"ranks": ranks})

    def finish(self) -> dict[str, Any]:
        p = self.progress
        distributed.barrier(self.group)
        lines = (self.run_dir / files.METRICS_LOG).read_text(encoding="utf-8").splitlines()
        history = [json.loads(line) for line in lines]
        summary = {
            "kind": "language_model",
            "best_epoch": p.best_epoch,
            "epochs_run": len(history),
            "valid_loss": p.best,
            "valid_perplexity": math.exp(min(p.best, 50)),
            "train_seconds": p.seconds,
            "tokens_per_s": sum(r["tokens_per_s"] for r in history) / len(history),
            "texts": self.sources,
            "tokens": self.tokens,
            "parameters": self.parameters,
        }
        if self.group.main:
            files.write_json(self.run_dir / files.METRICS, summary)
            self.env["finished"] = session.now()
            files.write_json(self.run_dir / files.ENV, self.env)
        self.log(f"language model: best epoch {p.best_epoch}, valid perplexity {summary['valid_perplexity']:.2f}")
        return summary
