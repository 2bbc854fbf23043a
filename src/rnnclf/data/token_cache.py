"""Token ids, computed once per corpus and tokenizer and cached: a second run on the same data
skips reading, splitting and tokenizing. Ids live in memory-mapped .npy files, not Python lists.

The cache key hashes the data files' bytes and every setting that changes the ids (tokenizer,
max_length, fields, format, and the seed and fraction of a carved validation split).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tokenizers

from rnnclf.config.loading import tokenizer_settings
from rnnclf.config.schema import Config
from rnnclf.data.builtin import cache_dir, fetch
from rnnclf.data.corpus import carve_seed, label_targets, load_corpus
from rnnclf.data.tokenizer import EncodedTexts, encode, extend_vocabulary, fit_tokenizer

CACHE_FORMAT = 3


@dataclass
class Prepared:
    """The corpus turned into what the model eats: fitted tokenizer, token ids, targets (label indices; for
    multi-label data, rows of 0 / 1 per label)."""

    labels: list[str]
    tokenizer: tokenizers.Tokenizer
    encoded: dict[str, EncodedTexts]
    targets: dict[str, np.ndarray]
    cached: bool = False


def _data_files(config: Config) -> dict[str, Path]:
    data = config.data
    if data.dataset is not None:
        return fetch(data.dataset)
    return {name: path for name, path in (("train", data.train), ("valid", data.valid), ("test", data.test)) if path}


def cache_key(
    config: Config, tokenizer: tokenizers.Tokenizer | None = None, extend: bool = False, labels: Sequence[str] = ()
) -> str:
    data = config.data
    files = _data_files(config)
    settings = {
        "format": CACHE_FORMAT,
        "tokenizers": tokenizers.__version__,
        "tokenizer": config.tokenizer.model_dump(mode="json"),
        "max_length": data.max_length,
        "fields": [data.format, data.text_field, data.label_field],
        "labels": [data.multi_label, data.label_separator if data.multi_label else None],
        "carve": None if "valid" in files else [data.valid_fraction, carve_seed(data, config.train.seed)],
        "fold": [data.folds, data.fold, data.fold_seed] if data.folds else None,
        # a given tokenizer (model.init's, a resumed run's): its own entry, so that runs from it share one
        "given": hashlib.sha256(tokenizer.to_str().encode()).hexdigest() if tokenizer is not None else None,
        "update": [extend, list(labels)] if extend or labels else None,  # an earlier classifier's words and labels
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name in sorted(files):
        digest.update(name.encode())
        try:
            with open(files[name], "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return ""  # unreadable: no cache; reading the corpus gives the clear error
    return digest.hexdigest()[:24]


def prepare(
    config: Config, tokenizer: tokenizers.Tokenizer | None = None, extend: bool = False, labels: Sequence[str] = ()
) -> Prepared:
    """Token ids and targets of every split, from the cache when the same data was tokenized before.

    The tokenizer is fitted on the training split, unless one is given (a resumed run's, a language model's);
    `extend`: the given one gets the training split's new words (an update of an earlier classifier, whose
    `labels` the model keeps besides the data's).
    """
    key = cache_key(config, tokenizer, extend, labels)
    folder = cache_dir() / "tokens" / key
    if key and (folder / "meta.json").exists():
        prepared = _load(folder)
        if prepared is None:
            shutil.rmtree(folder, ignore_errors=True)  # damaged: recompute it below
        elif tokenizer is None or extend or tokenizer.to_str() == prepared.tokenizer.to_str():
            return prepared
    corpus = load_corpus(config.data, config.train.seed, labels)
    if tokenizer is None:
        tokenizer = fit_tokenizer(corpus.train.texts, config.data.max_length, **tokenizer_settings(config))
    elif extend:
        tokenizer = extend_vocabulary(
            tokenizer, corpus.train.texts, config.data.max_length, **tokenizer_settings(config)
        )
    splits = {"train": corpus.train, "valid": corpus.valid} | ({"test": corpus.test} if corpus.test is not None else {})
    prepared = Prepared(
        labels=corpus.labels,
        tokenizer=tokenizer,
        encoded={name: encode(tokenizer, split.texts) for name, split in splits.items()},
        targets={
            name: label_targets(split.labels, corpus.labels, corpus.multi_label) for name, split in splits.items()
        },
    )
    if key:
        _save(folder, prepared)
    return prepared


def _save(folder: Path, prepared: Prepared) -> None:
    """Write the entry into a temporary folder, then rename it into place: never a half entry."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    except OSError:
        return  # no cache where none can be written
    try:
        for name, encoded in prepared.encoded.items():
            np.save(temp / f"{name}.ids.npy", encoded.ids)
            np.save(temp / f"{name}.offsets.npy", encoded.offsets)
            np.save(temp / f"{name}.targets.npy", prepared.targets[name])
        prepared.tokenizer.save(str(temp / "tokenizer.json"))
        (temp / "meta.json").write_text(json.dumps({"labels": prepared.labels, "splits": list(prepared.encoded)}))
        os.chmod(temp, 0o755)
        os.replace(temp, folder)
    except OSError:
        shutil.rmtree(temp, ignore_errors=True)  # another run got there first, or the disk is full: no cache


def _load(folder: Path) -> Prepared | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        encoded = {
            name: EncodedTexts(
                np.load(folder / f"{name}.ids.npy", mmap_mode="r"), np.load(folder / f"{name}.offsets.npy")
            )
            for name in meta["splits"]
        }
        targets = {name: np.load(folder / f"{name}.targets.npy") for name in meta["splits"]}
        tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception:  # a damaged entry is recomputed, not an error
        return None
    return Prepared(meta["labels"], tokenizer, encoded, targets, cached=True)
