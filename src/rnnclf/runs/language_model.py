"""model.init: a finished `rnnclf pretrain` run read back for a classifier (checked against its config), and
its embedding and recurrent weights put into the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import nn

from rnnclf import files
from rnnclf.config.loading import parse_config, read_yaml
from rnnclf.config.schema import Config
from rnnclf.data.tokenizer import load_tokenizer
from rnnclf.errors import RnnclfError
from rnnclf.runs.tensors import load_tensors

MUST_MATCH = (
    ("embedding", "dim"),
    ("model", "encoder"),
    ("model", "hidden_size"),
    ("model", "num_layers"),
    ("model", "bidirectional"),
)


@dataclass
class LanguageModelRun:
    path: Path
    tokenizer: Tokenizer  # with the classifier's truncation (data.max_length)
    weights: dict[str, torch.Tensor]  # the embedding and recurrent layers
    notes: list[str]  # what the user should know, for the log


def load_language_model(config: Config) -> LanguageModelRun:
    """model.init's run directory, checked against the classifier's config: one line naming the first key or file
    that does not fit."""
    path = Path(config.model.init)
    where = f"model.init: {path}"
    if path.is_file():
        raise RnnclfError(f"{where}: is a file; name the run directory that rnnclf pretrain wrote")
    if not path.is_dir():
        raise RnnclfError(
            f"{where}: run directory not found (a relative model.init is read from the current folder; train it "
            "with rnnclf pretrain --config FILE)"
        )
    if not (path / files.LANGUAGE_MODEL).exists():
        raise RnnclfError(f"{where}: not an rnnclf pretrain run directory (no {files.LANGUAGE_MODEL})")
    if not (path / files.METRICS).exists():
        raise RnnclfError(f"{where}: the language model has not finished; continue it: rnnclf pretrain --resume {path}")
    if config.embedding.pretrained is not None:
        raise RnnclfError(
            f"{where}: the language model brings its embedding; remove embedding.pretrained (give it in the "
            "pretraining config instead)"
        )
    if config.data.rehearsal is not None:
        raise RnnclfError(f"{where}: a language model; data.rehearsal mixes in an earlier classifier's training texts")
    if config.model.encoder == "bag":
        raise RnnclfError(f"{where}: a language model needs a recurrent encoder; model.encoder bag has none")
    pretrained = parse_config(read_yaml(path / files.CONFIG, "run config"), path / files.CONFIG)
    for section, key in MUST_MATCH:
        theirs, ours = getattr(getattr(pretrained, section), key), getattr(getattr(config, section), key)
        if theirs != ours:
            raise RnnclfError(f"{where}: pretrained with {section}.{key} {theirs}, and this config has {ours}")
    if pretrained.tokenizer != config.tokenizer:
        differ = next(k for k, v in config.tokenizer.model_dump().items() if getattr(pretrained.tokenizer, k) != v)
        raise RnnclfError(
            f"{where}: pretrained with tokenizer.{differ} {getattr(pretrained.tokenizer, differ)}, and this config "
            f"has {getattr(config.tokenizer, differ)}"
        )
    notes = []
    split = (pretrained.train.seed, pretrained.data.valid_fraction) != (config.train.seed, config.data.valid_fraction)
    if config.data.valid is None and split:  # validation carved from train, differently
        notes.append(
            f"warning: the language model carved its validation split with train.seed {pretrained.train.seed} and "
            f"data.valid_fraction {pretrained.data.valid_fraction}, this run with {config.train.seed} and "
            f"{config.data.valid_fraction}: it has read (without labels) some of this run's validation texts"
        )
    tokenizer = load_tokenizer(path / files.TOKENIZER)
    if config.data.max_length is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(config.data.max_length)
    weights = load_tensors(path / files.WEIGHTS)
    kept = {name: value for name, value in weights.items() if name.split(".")[0] in ("embedding", "encoder")}
    return LanguageModelRun(path, tokenizer, kept, notes)


def take_weights(model: nn.Module, language_model: LanguageModelRun) -> None:
    """The language model's embedding and recurrent weights into the classifier; its output layer stays new."""
    own = model.state_dict()
    for name, value in language_model.weights.items():
        if name not in own or own[name].shape != value.shape:
            raise RnnclfError(f"model.init: {language_model.path}: weight {name} does not fit this classifier")
    missing = [name for name in own if name not in language_model.weights and not name.startswith("head.")]
    if missing:
        raise RnnclfError(f"model.init: {language_model.path}: has no weight {missing[0]}")
    model.load_state_dict(language_model.weights, strict=False)
