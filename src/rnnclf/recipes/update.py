"""model.init naming a finished classifier run: an update of that model with new data (rnnclf train --init RUN).

The new run starts from the earlier one's tokenizer (with the new training texts' unknown words appended, so every
known word keeps its id), its embedding, recurrent layers and output rows (matched by label name; a new label gets a
new row), and knows its labels besides the new data's. The wide head (model.wide) is fitted again, exactly, as in
any run. data.rehearsal mixes the earlier run's training texts into each epoch (a new draw every epoch) and adds
its validation texts to validation, so that the best epoch is chosen on what must not be forgotten too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnclf import files
from rnnclf.check.findings import normalise
from rnnclf.config.schema import Config
from rnnclf.data.batching import bucket_by_length
from rnnclf.data.corpus import label_names, label_targets, load_corpus, subset
from rnnclf.data.readers import Split
from rnnclf.data.tokenizer import concatenate, encode
from rnnclf.errors import RnnclfError
from rnnclf.runs.directory import Run, load_run, update_chain
from rnnclf.runs.language_model import MUST_MATCH as LANGUAGE_MODEL_MATCH

MUST_MATCH = LANGUAGE_MODEL_MATCH + (  # a language model's keys, and those of the classifier's layers after them
    ("model", "pooling"),
    ("model", "chunk"),
    ("model", "chunk_pooling"),
    ("data", "multi_label"),
    ("tokenizer", "kind"),
    ("tokenizer", "lowercase"),
)


def starts_from_classifier(config: Config, resuming: bool = False) -> bool:
    """model.init names a classifier run (not a language model). Resuming, the run has its own words, labels and
    weights: the earlier run is read again only for data.rehearsal's texts."""
    init = config.model.init
    if init is None or (Path(init) / files.LANGUAGE_MODEL).exists():
        return False
    return config.data.rehearsal is not None if resuming else True


@dataclass
class Start:
    """The earlier classifier: its run (weights unless the update is being resumed) and its weights' digest."""

    run: Run
    digest: str

    @property
    def labels(self) -> list[str]:
        return self.run.labels

    def record(self, labels: list[str], vocabulary: int) -> dict[str, Any]:
        """What the new run says about where it started (metrics.json's summary, "init")."""
        known = set(self.labels)
        return {
            "run": str(self.run.path),
            "sha256": self.digest,
            "labels_added": [label for label in labels if label not in known],
            "words_added": vocabulary - self.run.tokenizer.get_vocab_size(),
        }


def load_start(config: Config, weights: bool = True) -> Start:
    """model.init's classifier run, checked against this config: one line naming the first key that differs."""
    path = Path(config.model.init)
    where = f"model.init: {path}"
    if not path.is_dir():
        what = "is a file; name the run directory" if path.exists() else "run directory not found"
        raise RnnclfError(f"{where}: {what} (a relative model.init is read from the current folder)")
    if not (path / files.CONFIG).exists():
        raise RnnclfError(f"{where}: not a run directory (no {files.CONFIG}); name a finished rnnclf train run")
    if not (path / files.METRICS).exists():
        raise RnnclfError(f"{where}: the run has not finished; continue it first: rnnclf train --resume {path}")
    try:
        run = load_run(path, weights=weights)
    except RnnclfError as exc:
        raise RnnclfError(f"model.init: {exc}") from None
    for section, key in MUST_MATCH:
        theirs, ours = getattr(getattr(run.config, section), key), getattr(getattr(config, section), key)
        if theirs != ours:
            raise RnnclfError(f"{where}: trained with {section}.{key} {theirs}, and this config has {ours}")
    if run.config.model.encoder == "none":
        raise RnnclfError(f"{where}: a linear model (model.encoder none); it has no weights to start from")
    return Start(run, files.sha256_of(path / files.WEIGHTS))


def warm_weights(model: nn.Module, start: Start, labels: list[str]) -> None:
    """The earlier model's weights into the new one: the embedding rows of its words (their ids are kept; new words
    keep their new rows, pretrained vectors where there are some), every recurrent and pooling weight, and its
    output rows by label name. The wide head is the new run's own (fitted again)."""
    own, old = model.state_dict(), start.run.weights
    index = {label: i for i, label in enumerate(labels)}
    rows = torch.tensor([index[label] for label in start.labels])
    taken = {}
    for name, value in old.items():
        if name.startswith("wide."):
            continue
        if name not in own:
            raise RnnclfError(f"model.init: {start.run.path}: its weight {name} has no place in this model")
        target = own[name].clone()
        if name == "embedding.weight":
            target[: value.shape[0]] = value
        elif name.startswith("head."):
            target[rows] = value
        elif target.shape != value.shape:
            raise RnnclfError(f"model.init: {start.run.path}: its weight {name} does not fit this model")
        else:
            target = value
        taken[name] = target
    missing = [name for name in own if name not in taken and not name.startswith("wide.")]
    if missing:
        raise RnnclfError(f"model.init: {start.run.path}: has no weight {missing[0]}")
    model.load_state_dict(taken, strict=False)


@dataclass
class Rehearsal:
    """The earlier run's training texts after the new ones in the training split: each epoch trains on every new
    text and `count` of the old, drawn anew per epoch (seeded by the seed and the epoch)."""

    new: int  # the first `new` training rows are this run's own
    old: int  # then the earlier run's training texts
    count: int  # how many of them each epoch

    def rows(self, seed: int, epoch: int) -> np.ndarray:
        drawn = np.random.default_rng([seed, epoch, 7]).choice(self.old, self.count, replace=False)
        return np.concatenate([np.arange(self.new), self.new + np.sort(drawn)])

    def batches(self, lengths: np.ndarray, batch_size: int, seed: int, epoch: int, window: int | None) -> list:
        rows = self.rows(seed, epoch)
        return [rows[batch] for batch in bucket_by_length(lengths[rows], batch_size, seed, epoch, window)]

    def record(self) -> dict[str, int]:
        return {"new_texts": self.new, "old_texts": self.old, "old_per_epoch": self.count}


def old_texts(start: Start) -> dict[str, Split]:
    """The training and validation texts of the earlier run and of the runs it was itself updated from (each text
    once), as they read them: their data files must still be there."""
    parts: dict[str, list[Split]] = {"train": [], "valid": []}
    for run in update_chain(start.run):
        try:
            corpus = load_corpus(run.config.data, run.config.train.seed, run.labels)
        except RnnclfError as exc:
            raise RnnclfError(f"data.rehearsal reads the training data of {run.path}: {exc}") from None
        parts["train"].append(corpus.train)
        parts["valid"].append(corpus.valid)
    return {name: merged(splits) for name, splits in parts.items()}


def merged(splits: list[Split]) -> Split:
    """Several splits as one, each text once (its first occurrence, after normalisation)."""
    texts, labels, seen = [], [], set()
    for split in splits:
        for text, label in zip(split.texts, split.labels, strict=True):
            key = normalise(text)
            if key not in seen:
                seen.add(key)
                texts.append(text)
                labels.append(label)
    return Split(texts, labels, " + ".join(str(split.source) for split in splits))


def without_repeats(old: dict[str, Split], config: Config) -> dict[str, Split]:
    """The earlier run's texts that this run's training and validation splits do not hold (after the data check's
    normalisation): a training file with the new rows appended is not rehearsed twice."""
    corpus = load_corpus(config.data, config.train.seed, old_labels(old, config))
    new = {normalise(text) for split in (corpus.train, corpus.valid) for text in split.texts}
    return {
        name: subset(
            split, np.array([normalise(text) not in new for text in split.texts], dtype=bool), "not in this run"
        )
        for name, split in old.items()
    }


def old_labels(old: dict[str, Split], config: Config) -> set[str]:
    return label_names(old["train"], config.data.multi_label) | label_names(old["valid"], config.data.multi_label)


def begin_update(recipe: Any, sizes: dict[str, int]) -> dict[str, Any]:
    """An update's data once tokenized: the rehearsed texts joined, the warning when validation holds texts the
    earlier run trained on, and what metrics.json records."""
    loop, start, old = recipe.loop, recipe.start, recipe.old
    record = {"init": start.record(recipe.labels, len(recipe.vocab))}
    say_what_changed(recipe, record["init"]["labels_added"])
    if old is None:
        warn_if_validation_was_learnt(recipe)
        return record
    if not len(old["train"]):
        loop.log("rehearsal: every training text of the earlier run is in this run's data; nothing to rehearse")
        return record
    recipe.rehearsal = join_rehearsal(recipe, old)
    sizes |= {"train": recipe.rehearsal.new + recipe.rehearsal.count, "valid": len(recipe.data.encoded["valid"])}
    loop.log(
        f"rehearsal: {recipe.rehearsal.count:,} of the earlier run's {recipe.rehearsal.old:,} training texts each "
        f"epoch, beside the {recipe.rehearsal.new:,} new"
        + (f"; its {len(old['valid']):,} validation texts join validation" if len(old["valid"]) else "")
    )
    return record | {"rehearsal": recipe.rehearsal.record()}


FEW = 10  # a new label with fewer training texts is named in a warning (a typo in a label makes one)


def say_what_changed(recipe: Any, added: list[str]) -> None:
    """The labels an update adds, with their training texts (a misspelt label shows up here), and a warning when
    the earlier run had the wide head and this config does not (its output layer learnt beside it)."""
    loop, targets = recipe.loop, recipe.data.targets["train"]
    if added:
        index = {label: i for i, label in enumerate(recipe.labels)}
        counts = {
            label: int(targets[:, index[label]].sum() if targets.ndim == 2 else (targets == index[label]).sum())
            for label in added
        }
        loop.log("labels added: " + ", ".join(f"{label} ({count:,} texts)" for label, count in counts.items()))
        for label, count in counts.items():
            if count < FEW:
                loop.log(f"rnnclf: warning: new label '{label}' has {count} training text{'s' * (count != 1)}; a typo?")
    if recipe.start.run.config.model.wide and not loop.config.model.wide:
        loop.log(
            "rnnclf: warning: model.init's run has model.wide true and this config false: its output layer learnt "
            "beside the wide head's scores; set model.wide: true"
        )


def warn_if_validation_was_learnt(recipe: Any) -> None:
    """One line when this run's validation split holds texts the earlier run trained on (a training file with new
    rows appended carves another validation split): its choices would be made on texts the model has learnt."""
    config = recipe.loop.config
    try:
        learnt = {normalise(text) for text in old_texts(recipe.start)["train"].texts}
        valid = load_corpus(config.data, config.train.seed, recipe.labels).valid
    except RnnclfError:
        return
    overlap = sum(normalise(text) in learnt for text in valid.texts)
    if overlap:
        recipe.loop.log(
            f"rnnclf: warning: {overlap:,} of the {len(valid):,} validation texts were training texts of model.init's "
            "run: the best epoch and the calibration are chosen on texts it has learnt; give both runs one data.valid"
        )


def join_rehearsal(recipe: Any, old: dict[str, Any]) -> Rehearsal:
    """The earlier run's training texts after the new training split's, its validation texts after the new
    validation split's: token ids with the new tokenizer, n-gram rows, targets over the new labels."""
    data, config = recipe.data, recipe.loop.config
    new = len(data.encoded["train"])
    for name, split in old.items():
        encoded = encode(data.tokenizer, split.texts)
        if recipe.features is not None:
            encoded.wide = recipe.features.transform(split.texts)
        data.encoded[name] = concatenate([data.encoded[name], encoded])
        targets = label_targets(split.labels, recipe.labels, config.data.multi_label)
        data.targets[name] = np.concatenate([data.targets[name], targets.astype(data.targets[name].dtype)])
    share = config.data.rehearsal
    count = len(old["train"])
    drawn = min(count, round(share * count) if share < 1 else int(share))
    return Rehearsal(new, count, max(drawn, 1))
