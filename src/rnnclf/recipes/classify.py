"""A classifier, from scratch, from pretrained word vectors or from a language model (model.init), with or without a
wide head (model.wide), as the one training loop (training/loop.py) runs it: rnnclf train (train, resume) and
each trial of rnnclf tune; and with model.encoder none the linear n-gram model alone (Linear).

The recipe supplies: the token ids of every split (cached), the model and its output bias, the step (loss, class
weights, optimizer, schedule, gradual unfreezing), bucketed batches, validation scores, and at the end the best
weights' report on valid and test with the fitted temperature and (multi-label) thresholds (classify_report.py).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnclf import files
from rnnclf.config.loading import config_to_dict
from rnnclf.config.schema import Config
from rnnclf.data.batching import bucket_by_length, collate
from rnnclf.data.ngrams import NgramFeatures
from rnnclf.data.token_cache import prepare
from rnnclf.data.tokenizer import vocabulary
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate
from rnnclf.evaluation.multilabel import describe_label_sets
from rnnclf.evaluation.scores import scores
from rnnclf.inference.logits import predict_logits
from rnnclf.models.classifier import RNNClassifier, classifier_arguments
from rnnclf.models.embeddings import load_pretrained
from rnnclf.models.layer_groups import frozen_parameters, unfreezing_note
from rnnclf.recipes.classify_report import final_reports, summary_of
from rnnclf.recipes.distill import Distillation, join_training, teacher_outputs
from rnnclf.recipes.update import (
    begin_update,
    load_start,
    old_texts,
    starts_from_classifier,
    warm_weights,
    without_repeats,
)
from rnnclf.recipes.wide import attach_ngrams, choose_scale, fit_wide, wide_scores
from rnnclf.runs.directory import Run, load_run
from rnnclf.runs.language_model import load_language_model, take_weights
from rnnclf.training import distributed, session
from rnnclf.training.checkpoint import Progress
from rnnclf.training.loop import EpochHook, Log, fit
from rnnclf.training.losses import class_weight_tensor, init_label_bias, objective
from rnnclf.training.recipe import Optimization, Recipe, Validation
from rnnclf.training.step import build_step


def recipe_for(config: Config, previous: Run | None = None) -> Classify:
    return Linear(previous) if config.model.encoder == "none" else Classify(previous)


def train(
    config: Config,
    command: list[str] | None = None,
    log: Log = print,
    on_epoch: EpochHook | None = None,
    trial: bool = False,
) -> dict[str, Any]:
    """Train a classifier as the config says and write a new run directory. Returns the metrics summary."""
    run_dir = Path(config.output.run_dir)
    if distributed.from_env().main:  # the other processes of a distributed run find rank 0's directory
        session.check_run_dir(run_dir)
    return fit(recipe_for(config), config, run_dir, False, command or sys.argv, log, on_epoch, trial)


def resume(run_dir: Path, command: list[str] | None = None, log: Log = print) -> dict[str, Any] | None:
    """Continue a run from its last saved state, or from its start when it stopped before its first save (the
    run's own config and tokenizer; same data). A run that has finished says so and returns None."""
    if not run_dir.is_dir():
        raise RnnclfError(f"{run_dir}: run directory not found")
    if not (run_dir / files.CONFIG).exists():
        raise RnnclfError(
            f"{run_dir}: no saved training state to resume from (no {files.CONFIG}, no {files.STATE}/state.safetensors)"
        )
    if (run_dir / files.LANGUAGE_MODEL).exists():
        raise RnnclfError(f"{run_dir}: a language model; continue it with rnnclf pretrain --resume {run_dir}")
    if session.is_complete(run_dir):
        log(session.complete_line(run_dir))
        return None
    previous = load_run(run_dir, weights=False)
    return fit(recipe_for(previous.config, previous), previous.config, run_dir, True, command or sys.argv, log)


class Classify(Recipe):
    """A classifier's data, model, step, validation and final report; `previous`: the run being resumed."""

    def __init__(self, previous: Run | None = None) -> None:
        self.previous = previous
        self.best_valid_logits: np.ndarray | None = None  # finish() reports on them instead of predicting valid again
        self.features: NgramFeatures | None = None  # model.wide: the n-grams of the wide head
        self.distillation: Distillation | None = None  # train.teacher: its logits, the rows with gold labels
        self.rehearsal = None  # data.rehearsal: the earlier run's training texts mixed into each epoch
        self.old: dict | None = None  # ... and those texts: its training and validation splits

    # setting up

    def prepare_data(self) -> dict[str, Any]:
        """Token ids of every split (rank 0 fills the token cache; the other processes then read it)."""
        loop, config = self.loop, self.loop.config
        self.multi_label, metric = config.data.multi_label, config.train.metric
        self.curves_metric, self.lower_is_better, self.watched = metric, metric == "loss", f"better valid {metric}"
        # model.init: an earlier classifier (an update), or a language model's tokenizer and weights (checked first)
        self.start = load_start(config, weights=not loop.saved) if starts_from_classifier(config, loop.saved) else None
        self.old = old_texts(self.start) if self.start and config.data.rehearsal else None  # before any work
        lm = config.model.init and not starts_from_classifier(config) and not loop.saved
        self.language_model = load_language_model(config) if lm else None
        teaching = config.train.teacher is not None and config.model.encoder != "none"
        self.distillation = teacher_outputs(self) if teaching else None  # a teacher that does not fit: no work done
        started = time.perf_counter()
        if not loop.group.main:
            distributed.barrier(loop.group)
        given = self.previous.tokenizer if self.previous else self.start.run.tokenizer if self.start else None
        given = self.language_model.tokenizer if self.language_model else given
        known = self.previous.labels if self.previous else self.start.labels if self.start else ()
        self.data = prepare(config, given, self.start is not None and self.previous is None, known)
        if loop.group.main:
            distributed.barrier(loop.group)
        took = time.perf_counter() - started
        loop.log(f"tokens: {'from the cache' if self.data.cached else 'tokenized and cached'} in {took:.1f}s")
        self.labels = self.data.labels
        if self.previous and self.previous.labels != self.labels:
            raise RnnclfError(f"{loop.run_dir}: the data's labels changed since this run started; cannot resume")
        sizes = {name: len(enc) for name, enc in self.data.encoded.items()}
        loop.log(
            "data: "
            + ", ".join(f"{name} {size:,}" for name, size in sizes.items())
            + (f" texts, {len(self.labels)} {'labels' if self.multi_label else 'classes'}")
            + (f" ({describe_label_sets(self.data.targets)})" if self.multi_label else "")
        )
        self.vocab = vocabulary(self.data.tokenizer)
        loop.log(f"vocabulary: {len(self.vocab):,} tokens ({config.tokenizer.kind}), {self.vocabulary_source()}")
        if self.old is not None:
            self.old = without_repeats(self.old, config)  # what this run's data has already is not rehearsed
        if config.model.wide:
            self.features = attach_ngrams(self, self.old["train"].texts if self.old else ())
        extra = begin_update(self, sizes) if self.start else {}
        if self.distillation is not None:
            join_training(self, self.distillation)
            sizes["train"] = len(self.data.encoded["train"])
            extra["teacher"] = self.distillation.record(config)
        return {"vocab_size": len(self.vocab), "sizes": sizes} | extra

    def vocabulary_source(self) -> str:
        if self.start is not None:
            words = len(self.vocab) - self.start.run.tokenizer.get_vocab_size()
            return f"model.init's {self.start.run.path} and {words:,} new words of the training split"
        init = self.loop.config.model.init
        return f"from the language model {init}" if init else "fitted on the training split"

    def gold_rows(self) -> np.ndarray | None:
        """The training rows with gold labels when a teacher added rows without (None: every row)."""
        return None if self.distillation is None else np.flatnonzero(self.distillation.gold)

    def epoch_targets(self) -> np.ndarray:
        """The targets of what an epoch trains on (data.rehearsal: the new texts and one draw of the old)."""
        if self.rehearsal is None:
            return self.gold_targets()
        return self.data.targets["train"][self.rehearsal.rows(self.loop.tc.seed, 1)]

    def gold_targets(self) -> np.ndarray:
        rows, targets = self.gold_rows(), self.data.targets["train"]
        return targets if rows is None else targets[rows]

    def build_model(self) -> RNNClassifier:
        loop, config = self.loop, self.loop.config
        wide_features = self.features.size if self.features is not None else 0
        model = RNNClassifier(len(self.vocab), len(self.labels), **classifier_arguments(config, wide_features))
        if config.embedding.pretrained and not loop.saved:
            self.load_vectors(model)
        if self.language_model is not None:
            take_weights(model, self.language_model)
            loop.log(f"model: embedding and recurrent layers from the language model {self.language_model.path}")
            for note in self.language_model.notes:
                loop.log(note)
        note = unfreezing_note(model, config.train.gradual_unfreezing, config.train.epochs)
        if note:
            loop.log(note)
        if self.multi_label and not loop.saved:
            init_label_bias(model.head, self.epoch_targets())
        if self.start is not None and not loop.saved:  # an update: the earlier classifier's weights (new labels' own)
            warm_weights(model, self.start, self.labels)
            loop.log(f"model: every weight from model.init's {self.start.run.path} but the new words' and labels'")
        if model.wide is not None:  # fitted first, exactly; frozen while the encoder trains
            if not loop.saved:
                loop.progress.summary["wide"] = fit_wide(self, model)
            model.wide.requires_grad_(False)
        return model.to(loop.device)

    def load_vectors(self, model: RNNClassifier) -> None:
        loop, embedding = self.loop, self.loop.config.embedding
        counts = np.bincount(self.data.encoded["train"].ids, minlength=len(self.vocab))
        vectors = load_pretrained(embedding.pretrained, self.vocab, embedding.dim, counts, loop.tc.seed)
        with torch.no_grad():
            model.embedding.weight.copy_(torch.from_numpy(vectors.matrix))
        loop.progress.summary["embedding"] = {"pretrained": embedding.pretrained, **vectors.coverage()}
        loop.log(vectors.describe())

    def describe_model(self, parameters: dict[str, int]) -> str:
        return f"model: {self.loop.config.model.encoder}, {parameters['trainable']:,} trainable parameters"

    def build_step(self) -> Optimization:
        loop, tc = self.loop, self.loop.tc
        train_size = loop.progress.summary["sizes"]["train"]
        steps_per_epoch = distributed.steps_per_epoch(math.ceil(train_size / tc.batch_size), loop.group)
        if loop.config.model.chunk is not None:  # batches of windows: as many as the epochs' plans have
            steps_per_epoch = sum(len(self.epoch_batches(e)) for e in range(1, tc.epochs + 1)) / tc.epochs
        self.class_weights = class_weight_tensor(tc.class_weights, self.labels, self.epoch_targets())
        self.step = build_step(
            loop.model,
            loop.net,
            tc,
            self.class_weights,
            round(steps_per_epoch * tc.epochs),
            loop.device,
            loop.precision,
            self.multi_label,
        )
        return Optimization(self.step.optimizer, self.step.scheduler, self.step.scaler)

    def write_run_files(self, folder: Path, env: dict[str, Any]) -> None:
        config = config_to_dict(self.loop.config)
        if self.distillation is not None:  # the loop's own env, which it writes again at the end
            env["teacher"] = self.distillation.teacher.record()
        session.write_run_files(folder, config, self.labels, self.data.tokenizer, env)
        if self.features is not None:
            self.features.save(folder)

    # one epoch

    def start_epoch(self, epoch: int) -> None:
        self.step.frozen = frozen_parameters(self.loop.model, epoch, self.loop.tc.gradual_unfreezing)

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        tc, train = self.loop.tc, self.data.encoded["train"]
        window, rehearsal = self.loop.config.model.chunk, self.rehearsal
        if rehearsal is not None:  # every new text and a new draw of the earlier run's
            return distributed.shard(
                rehearsal.batches(train.lengths, tc.batch_size, tc.seed, epoch, window), self.loop.group
            )
        return distributed.shard(
            bucket_by_length(train.lengths, tc.batch_size, tc.seed, epoch, window), self.loop.group
        )

    def batch_tokens(self, batch: np.ndarray) -> int:
        return int(self.data.encoded["train"].lengths[batch].sum())

    def token_counts(self) -> tuple[int, int]:
        return int(self.data.encoded["train"].lengths.sum()), int(self.data.encoded["valid"].lengths.sum())

    @property
    def train_size(self) -> int:
        return len(self.data.encoded["train"])

    def train_batch(self, batch: np.ndarray, progress: Progress) -> tuple[int, float]:
        texts = collate(self.data.encoded["train"], batch, self.data.targets["train"])
        if self.distillation is not None:
            texts.teacher = torch.from_numpy(self.distillation.logits[batch])
            texts.gold = torch.from_numpy(self.distillation.gold[batch])
        loss_value, correct = self.step(texts)
        progress.count(len(texts.index), texts.num_tokens, loss_value, correct)
        return texts.num_tokens, loss_value

    def postfix(self, progress: Progress) -> dict[str, str]:
        return {"loss": f"{progress.total_loss / progress.seen:.4f}", "acc": f"{progress.correct / progress.seen:.3f}"}

    def validate(self) -> Validation:
        model = self.loop.model
        if model.wide is None or not model.deep:
            logits = self.logits("valid")
        else:  # the recurrent head's logits alone, then the wide scores' weight in their sum chosen on valid
            model.wide.scale.fill_(0.0)
            wide = wide_scores(model, self.data.encoded["valid"].wide)
            scale, logits = choose_scale(self, self.logits("valid"), wide)
            model.wide.scale.fill_(scale)
        report = self.scores(logits, "valid")
        return Validation(report[self.loop.tc.metric], {"report": report, "logits": logits})

    def improved(self, validation: Validation) -> None:
        self.best_valid_logits = validation.details["logits"]

    def logits(self, split: str) -> np.ndarray:
        """The model's logits on a split; with several processes each predicts a share."""
        loop = self.loop
        encoded, dtype, group = self.data.encoded[split], loop.precision.autocast, loop.group
        if not group.active:
            return predict_logits(loop.model, encoded, loop.device, dtype=dtype)
        share = np.arange(len(encoded))[group.rank :: group.world]
        parts = distributed.gather(
            (share, predict_logits(loop.model, encoded.take(share), loop.device, dtype=dtype)), group
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
        report["objective"] = objective(logits, targets, self.class_weights, self.loop.tc.label_smoothing)
        return report

    def epoch_record(self, validation: Validation, epoch_seconds: float, tokens: int) -> dict[str, Any]:
        loop, p, valid = self.loop, self.loop.progress, validation.details["report"]
        total_loss, correct, seen, tokens = distributed.sum_all(
            [p.total_loss, p.correct, p.seen, tokens], loop.group, loop.device
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
            **({"wide_scale": float(loop.model.wide.scale)} if loop.model.wide is not None and loop.model.deep else {}),
            "lr": loop.learning_rate(),
            "tokens_per_s": tokens / max(epoch_seconds, 1e-9),  # all processes together
            "epoch_seconds": epoch_seconds,
        }

    def describe_epoch(self, record: dict[str, Any], validation: Validation) -> str:
        valid = validation.details["report"]
        shown = f"micro F1 {valid['micro_f1']:.4f}" if self.multi_label else f"acc {valid['accuracy']:.4f}"
        wide = f" (wide head x{record['wide_scale']:g})" if "wide_scale" in record else ""
        return (
            f"epoch {record['epoch']}/{self.loop.epochs}  train loss {record['train_loss']:.4f} acc "
            f"{record['train_accuracy']:.4f}  valid loss {valid['loss']:.4f} {shown} macro F1 "
            f"{valid['macro_f1']:.4f}{wide}  {record['tokens_per_s']:,.0f} tok/s  {record['epoch_seconds']:.1f}s"
        )

    # the end

    def finish(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """The best weights on valid (and test, but not in a trial), with the temperature and thresholds fitted on
        valid; metrics.json's summary."""
        reports, thresholds = final_reports(self)
        return summary_of(self, history, reports, thresholds)


class Linear(Classify):
    """model.encoder none with model.wide: the linear n-gram model alone, through the same loop, commands and run
    directory as any classifier. Its one epoch is the exact fit of the wide head (training/linear_fit.py:
    scikit-learn LinearSVC's loss, minimised to its optimum; C chosen on the validation split), in seconds."""

    def epochs(self) -> int:
        return 1

    def build_model(self) -> RNNClassifier:
        arguments = classifier_arguments(self.loop.config, self.features.size)
        return RNNClassifier(len(self.vocab), len(self.labels), **arguments).to(self.loop.device)

    def describe_model(self, parameters: dict[str, int]) -> str:
        return f"model: linear over {self.features.size:,} n-grams (the wide head alone), {parameters['total']:,} parameters"

    def build_step(self) -> Optimization:
        self.class_weights = None
        return Optimization(None, None, torch.amp.GradScaler("cuda", enabled=False))

    def start_epoch(self, epoch: int) -> None:
        pass

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        return [np.arange(len(self.data.encoded["train"]))]  # one batch: the whole training split at once

    def train_batch(self, batch: np.ndarray, progress: Progress) -> tuple[int, float]:
        """The exact fit along the C path; counts one step of all the training texts."""
        model, train = self.loop.model, self.data.encoded["train"]
        self.loop.progress.summary["wide"] = fit_wide(self, model)
        report = scores(wide_scores(model, train.wide), self.data.targets["train"], self.labels)
        tokens = int(train.lengths.sum())
        progress.count(len(train), tokens, report["loss"], round(report["accuracy"] * len(train)))
        return tokens, report["loss"]

    def postfix(self, progress: Progress) -> dict[str, Any]:
        return {}
