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
from rnnclf.config.schema import Config
from rnnclf.data.batching import bucket_by_length
from rnnclf.data.corpus import label_targets, load_corpus
from rnnclf.data.sparse_rows import concatenate_rows
from rnnclf.data.tokenizer import EncodedTexts, concatenate, encode
from rnnclf.errors import RnnclfError
from rnnclf.runs.directory import Run, load_run

MUST_MATCH = (
    ("embedding", "dim"),
    ("model", "encoder"),
    ("model", "hidden_size"),
    ("model", "num_layers"),
    ("model", "bidirectional"),
    ("model", "pooling"),
    ("model", "chunk"),
    ("model", "chunk_pooling"),
    ("data", "multi_label"),
    ("tokenizer", "kind"),
    ("tokenizer", "lowercase"),
)


def starts_from_classifier(config: Config) -> bool:
    """model.init names a classifier run (not a language model)."""
    init = config.model.init
    return init is not None and not (Path(init) / files.LANGUAGE_MODEL).exists()


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


def old_texts(start: Start) -> dict[str, Any]:
    """The earlier run's training and validation splits, as it read them (its data files must still be there)."""
    data = start.run.config.data
    try:
        corpus = load_corpus(data, start.run.config.train.seed)
    except RnnclfError as exc:
        raise RnnclfError(f"data.rehearsal reads model.init's training data: {exc}") from None
    return {"train": corpus.train, "valid": corpus.valid}


def join_rehearsal(recipe: Any, old: dict[str, Any]) -> Rehearsal:
    """The earlier run's training texts after the new training split's, its validation texts after the new
    validation split's: token ids with the new tokenizer, n-gram rows, targets over the new labels."""
    data, config = recipe.data, recipe.loop.config
    new = len(data.encoded["train"])
    for name, split in old.items():
        encoded = encode(data.tokenizer, split.texts)
        if recipe.features is not None:
            encoded.wide = recipe.features.transform(split.texts)
        data.encoded[name] = join(data.encoded[name], encoded)
        targets = label_targets(split.labels, recipe.labels, config.data.multi_label)
        data.targets[name] = np.concatenate([data.targets[name], targets.astype(data.targets[name].dtype)])
    share = config.data.rehearsal
    count = len(old["train"])
    drawn = min(count, round(share * count) if share < 1 else int(share))
    return Rehearsal(new, count, max(drawn, 1))


def join(first: EncodedTexts, second: EncodedTexts) -> EncodedTexts:
    joined = concatenate([first, second])
    if first.wide is not None:
        joined.wide = concatenate_rows([first.wide, second.wide])
    return joined
