"""rnnclf pretrain: a recurrent language model on plain text, written as a run directory a classifier starts from
(model.init), run by the one training loop (training/loop.py).

The recipe supplies: the training split's texts and data.unlabelled's (the validation split's for perplexity,
never test's), a tokenizer fitted on them, the language model, and its batches: bucketed texts, each read in
windows of pretrain.bptt tokens with the state carried from one to the next, one optimizer step per window.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnclf import files
from rnnclf.config.loading import config_to_dict, parse_config, read_yaml
from rnnclf.config.schema import Config
from rnnclf.data.batching import bucket_by_length, collate, sequential_batches
from rnnclf.data.corpus import load_corpus
from rnnclf.data.tokenizer import EncodedTexts, encode, fit_tokenizer, load_tokenizer, vocabulary
from rnnclf.data.unlabelled import read_unlabelled
from rnnclf.errors import RnnclfError
from rnnclf.models.classifier import count_parameters
from rnnclf.models.embeddings import load_pretrained
from rnnclf.models.language_model import LanguageModel, detach, direction_streams, language_model_arguments, windows
from rnnclf.training import distributed, session
from rnnclf.training.checkpoint import Progress
from rnnclf.training.loop import Log, fit
from rnnclf.training.optim import build_optimizer, build_scheduler
from rnnclf.training.recipe import Optimization, Recipe, Validation
from rnnclf.training.step import NonFiniteLoss, apply_gradients


def pretrain(config: Config, command: list[str] | None = None, log: Log = print) -> dict[str, Any]:
    """Pretrain a language model as the config says and write a new run directory. Returns the summary."""
    run_dir = Path(config.output.run_dir)
    if distributed.from_env().main:
        session.check_run_dir(run_dir)
    return fit(Pretrain(), config, run_dir, False, command or sys.argv, log)


def resume_pretrain(run_dir: Path, command: list[str] | None = None, log: Log = print) -> dict[str, Any] | None:
    """Continue a language model from its last saved state; one that has finished says so and returns None."""
    if not run_dir.is_dir():
        raise RnnclfError(f"{run_dir}: run directory not found")
    if not (run_dir / files.LANGUAGE_MODEL).exists():
        raise RnnclfError(f"{run_dir}: not an rnnclf pretrain run directory (no {files.LANGUAGE_MODEL})")
    if session.is_complete(run_dir):
        log(session.complete_line(run_dir))
        return None
    raw = read_yaml(run_dir / files.CONFIG, "run config")
    return fit(Pretrain(), parse_config(raw, run_dir / files.CONFIG), run_dir, True, command or sys.argv, log)


class Pretrain(Recipe):
    command = "pretrain"
    loss_name = "language model loss"
    curves_metric = "perplexity"
    lower_is_better = True  # the validation loss
    watched = "lower valid perplexity"
    # a window may leave an adaptive softmax cluster without a target: unused there
    ddp_options = {"find_unused_parameters": True, "broadcast_buffers": False}

    # setting up

    def prepare_data(self) -> dict[str, Any]:
        """The training split's texts and data.unlabelled's; the validation split's for perplexity. Never test's."""
        loop, data = self.loop, self.loop.config.data
        started = time.perf_counter()
        corpus = load_corpus(data, loop.tc.seed)
        texts = list(corpus.train.texts)
        self.sources = {"training split": len(texts)}
        for path in data.unlabelled:
            extra = read_unlabelled(path, data)
            self.sources[str(path)] = len(extra)
            texts += extra
        if loop.resuming:
            self.tokenizer = load_tokenizer(loop.run_dir / files.TOKENIZER)
        else:
            self.tokenizer = fit_tokenizer(texts, data.max_length, **loop.config.tokenizer.model_dump())
        self.encoded = {"train": encode(self.tokenizer, texts), "valid": encode(self.tokenizer, corpus.valid.texts)}
        self.vocab = vocabulary(self.tokenizer)
        self.tokens = {name: int(len(enc.ids)) for name, enc in self.encoded.items()}
        loop.log(
            f"texts: {', '.join(f'{name} {count:,}' for name, count in self.sources.items())}; "
            f"{self.tokens['train']:,} training tokens, {self.tokens['valid']:,} validation tokens (the validation "
            f"split); vocabulary {len(self.vocab):,}; read in {time.perf_counter() - started:.1f}s"
        )
        return {"vocab_size": len(self.vocab), "sizes": {name: len(enc) for name, enc in self.encoded.items()}}

    def build_model(self) -> LanguageModel:
        loop, config = self.loop, self.loop.config
        model = LanguageModel(len(self.vocab), **language_model_arguments(config))
        counts = np.bincount(self.encoded["train"].ids, minlength=len(self.vocab))
        model.set_frequencies(counts)
        if config.embedding.pretrained and not loop.saved:
            embedding = config.embedding
            vectors = load_pretrained(embedding.pretrained, self.vocab, embedding.dim, counts, loop.tc.seed)
            with torch.no_grad():
                model.embedding.weight.copy_(torch.from_numpy(vectors.matrix))
            loop.log(vectors.describe())
        return model.to(loop.device)

    def describe_model(self, parameters: dict[str, int]) -> str:
        model = self.loop.model
        return (
            f"language model: {len(model.softmax)} direction(s) of {self.loop.config.model.encoder}, output layer "
            f"{type(model.softmax[0]).__name__}, {parameters['trainable']:,} trainable parameters"
        )

    def build_step(self) -> Optimization:
        loop, tc = self.loop, self.loop.tc
        optimizer = build_optimizer(loop.model, tc)
        # plateau watches the validation loss: lower is better
        scheduler = build_scheduler(optimizer, tc, self.total_steps(), lower_is_better=True)
        enabled = loop.precision.scaler and loop.device.type == "cuda"
        return Optimization(optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=enabled))

    def total_steps(self) -> int:
        """Windows in all epochs (the schedule's length): each epoch's batches are known in advance."""
        bptt = self.loop.config.pretrain.bptt
        plans = (self.epoch_batches(epoch) for epoch in range(1, self.loop.tc.epochs + 1))
        return max(sum(math.ceil((width - 1) / bptt) for plan in plans for _, width in plan), 1)

    def check_state(self, state: dict[str, Any]) -> None:
        processes = len(state.get("ranks") or [None])
        if processes != self.loop.group.world:  # the schedule's length and the batches' widths depend on it
            raise RnnclfError(
                f"{self.loop.run_dir}: this language model trained in {processes} process(es); resume it with "
                f"--nproc {processes}"
            )

    def write_run_files(self, folder: Path, env: dict[str, Any]) -> None:
        files.write_yaml(folder / files.CONFIG, config_to_dict(self.loop.config))
        files.write_atomic(folder / files.TOKENIZER, self.tokenizer.to_str(pretty=True).encode("utf-8"))
        files.write_json(folder / files.ENV, env)
        model = self.loop.model
        info = {"directions": len(model.softmax), "output_layer": type(model.softmax[0]).__name__}
        files.write_json(folder / files.LANGUAGE_MODEL, info | {"texts": self.sources, "tokens": self.tokens})

    # one epoch

    def epoch_batches(self, epoch: int) -> list[tuple[np.ndarray, int]]:
        """This process's batches of an epoch, each with the width it is padded to: with several processes, the
        widest of the batches the processes take at that step, so that all take the same number of windows."""
        group, tc = self.loop.group, self.loop.tc
        lengths = self.encoded["train"].lengths
        batches = bucket_by_length(lengths, tc.batch_size, tc.seed, epoch)
        world = group.world if group.active else 1
        steps = -(-len(batches) // world)
        padded = batches + batches[: steps * world - len(batches)]  # as distributed.shard pads them
        widths = [max(int(lengths[b].max()) for b in padded[i * world : (i + 1) * world]) for i in range(steps)]
        return [(padded[i * world + group.rank], widths[i]) for i in range(steps)]

    def batch_tokens(self, batch: tuple[np.ndarray, int]) -> int:
        return int(self.encoded["train"].lengths[batch[0]].sum())

    def token_counts(self) -> tuple[int, int]:
        return self.tokens["train"], self.tokens["valid"]

    def streams(self, encoded: EncodedTexts, index: np.ndarray, width: int | None = None) -> tuple[list, int]:
        """Each direction's token stream of a batch (padded to `width`), on the device; and its tokens."""
        batch = collate(encoded, index)
        ids = batch.ids if width is None else nn.functional.pad(batch.ids, (0, width - batch.ids.shape[1]))
        streams = direction_streams(ids, batch.lengths, self.loop.model.encoder.bidirectional)
        return [s.to(self.loop.device, non_blocking=True) for s in streams], batch.num_tokens

    def train_batch(self, batch: tuple[np.ndarray, int], progress: Progress) -> tuple[int, float]:
        """One batch of texts, window by window (one step each, the state carried); returns its tokens and the
        mean loss per token of its windows."""
        loop, p = self.loop, progress
        opt, group = loop.optimization, loop.group
        streams, tokens = self.streams(self.encoded["train"], *batch)
        states: list = [None] * len(streams)
        dtype = loop.precision.autocast
        batch_total = batch_count = 0.0
        for inputs, targets in windows(streams, loop.config.pretrain.bptt):
            with torch.autocast(loop.device.type, dtype=dtype, enabled=dtype is not None):
                total, count, finals = loop.net(inputs, targets, states)
            # the sums of all processes: each scales its loss so that DDP's mean of the gradients is the gradient
            # of the mean over all their tokens, and all of them see a non-finite loss together
            total_value, count_value = distributed.sum_all(
                torch.stack([total.detach(), count.to(total.dtype)]).tolist(), group, loop.device
            )
            if not math.isfinite(total_value):
                raise NonFiniteLoss(total_value)
            loss = total * (group.world if group.active else 1) / max(count_value, 1.0)
            apply_gradients(loss, loop.net, opt.optimizer, opt.scaler, opt.scheduler, loop.tc.grad_clip)
            states = detach(finals)
            p.step += 1
            p.total_loss += total_value  # all processes' sums: the same on each
            p.seen += int(count_value)
            batch_total, batch_count = batch_total + total_value, batch_count + count_value
        p.tokens += tokens
        return tokens, batch_total / max(batch_count, 1.0)

    def postfix(self, progress: Progress) -> dict[str, str]:
        return {"ppl": f"{math.exp(min(progress.total_loss / max(progress.seen, 1), 50)):.1f}"}

    @torch.no_grad()
    def validate(self) -> Validation:
        """Mean negative log-likelihood per token on the validation split; several processes share it."""
        loop = self.loop
        loop.model.eval()
        encoded, dtype, group = self.encoded["valid"], loop.precision.autocast, loop.group
        batches = sequential_batches(encoded.lengths, loop.tc.batch_size)
        total = count = 0.0
        for index in batches[group.rank :: group.world] if group.active else batches:
            streams, _ = self.streams(encoded, index)
            states: list = [None] * len(streams)
            for inputs, targets in windows(streams, loop.config.pretrain.bptt):
                with torch.autocast(loop.device.type, dtype=dtype, enabled=dtype is not None):
                    part_total, part_count, states = loop.model(inputs, targets, states)
                total += float(part_total)
                count += float(part_count)
        loop.model.train()
        total, count = distributed.sum_all([total, count], group, loop.device)
        return Validation(total / max(count, 1.0))

    def epoch_record(self, validation: Validation, epoch_seconds: float, tokens: int) -> dict[str, Any]:
        loop, p = self.loop, self.loop.progress
        (all_tokens,) = distributed.sum_all([tokens], loop.group, loop.device)
        train_loss = p.total_loss / max(p.seen, 1)
        return {
            "epoch": p.epoch,
            "step": p.step,
            "train_loss": train_loss,
            "train_perplexity": math.exp(min(train_loss, 50)),
            "valid_loss": validation.score,
            "valid_perplexity": math.exp(min(validation.score, 50)),
            "lr": loop.learning_rate(),
            "tokens_per_s": all_tokens / max(epoch_seconds, 1e-9),
            "epoch_seconds": epoch_seconds,
        }

    def describe_epoch(self, record: dict[str, Any], validation: Validation) -> str:
        return (
            f"epoch {record['epoch']}/{self.loop.epochs}  train perplexity {record['train_perplexity']:.1f}  "
            f"valid perplexity {record['valid_perplexity']:.1f}  {record['tokens_per_s']:,.0f} tok/s  "
            f"{record['epoch_seconds']:.1f}s"
        )

    # the end

    def finish(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        loop = self.loop
        common, best = loop.history_summary(history), loop.progress.best
        summary = {
            "kind": "language_model",
            "best_epoch": common["best_epoch"],
            "epochs_run": common["epochs_run"],
            "valid_loss": best,
            "valid_perplexity": math.exp(min(best, 50)),
            "train_seconds": common["train_seconds"],
            "tokens_per_s": common["tokens_per_s"],
            "texts": self.sources,
            "tokens": self.tokens,
            "parameters": count_parameters(loop.model),
        }
        loop.log(
            f"language model: best epoch {common['best_epoch']}, valid perplexity {summary['valid_perplexity']:.2f}"
        )
        return summary
