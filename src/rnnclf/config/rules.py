"""Every rule of the form "this key is invalid, or does nothing, here", in one place.

- Invalid combinations (an error, one line naming the keys): checked when a config is read (schema.py's validators
  call the check_* functions here), and for a command that cannot use a config (check_pretrainable,
  check_data_files).
- Inert keys (a warning): a value other than the default that nothing reads in this config or command
  (train_warnings, pretrain_warnings).
- Keys rnnclf tune may not search (UNSEARCHABLE).

Imports nothing of the schema: it reads a config's sections by attribute, and each field's default from its
section's own model_fields.
"""

from __future__ import annotations

from typing import Any

from rnnclf.errors import RnnclfError

# --- invalid combinations, checked by the schema's validators (a ValueError there becomes one line) -------------


def check_data_source(data: Any) -> None:
    if data.dataset is None and data.train is None:
        raise ValueError("set either data.dataset (a built-in corpus) or data.train (a file)")
    if data.dataset is not None and data.train is not None:
        raise ValueError("set data.dataset or data.train, not both")
    if (data.folds is None) != (data.fold is None):
        raise ValueError("data.folds and data.fold go together: the number of folds and the one held out")
    if data.folds is not None and data.fold >= data.folds:
        raise ValueError(
            f"data.fold {data.fold}: the folds are numbered 0 to {data.folds - 1} (data.folds {data.folds})"
        )
    if data.dataset is not None:
        # a built-in corpus brings its own files, format and fields: these keys would do nothing
        given = [key for key in ("train", "valid", "test") if getattr(data, key) is not None]
        given += [key for key in ("format", "text_field", "label_field") if changed(data, key)]
        if given:
            raise ValueError(
                f"data.{given[0]} does nothing with data.dataset (a built-in corpus has its own files and "
                "fields); remove one of the two"
            )


def check_model(model: Any) -> None:
    if model.encoder == "none" and not model.wide:
        raise ValueError(
            "model.encoder none leaves no model; set model.wide: true (the linear n-gram model alone) or choose an "
            "encoder (lstm, gru, rnn, bag)"
        )
    if model.encoder == "bag" and model.pooling == "last":
        raise ValueError("model.pooling 'last' needs a recurrent encoder; use mean or max with encoder 'bag'")
    if model.dropout > 0 and (model.encoder == "bag" or model.num_layers == 1):
        raise ValueError(
            "model.dropout acts between recurrent layers and this model has one"
            f"{' (encoder bag has none)' if model.encoder == 'bag' else ''}; set model.num_layers >= 2, or use "
            "embedding.dropout / model.head_dropout"
        )


def check_train(train: Any) -> None:
    if train.warmup_ratio > 0 and train.scheduler in ("none", "plateau"):
        raise ValueError(
            f"train.warmup_ratio needs a schedule with warm-up (linear, cosine or slanted), and train.scheduler "
            f"is '{train.scheduler}'; set train.warmup_ratio: 0 or choose linear / cosine / slanted"
        )


def check_config(config: Any) -> None:
    """Rules across sections."""
    if config.train.metric in ("micro_f1", "samples_f1") and not config.data.multi_label:
        raise ValueError(
            f"train.metric {config.train.metric} is a multi-label metric and data.multi_label is false (for "
            "single-label data micro F1 is accuracy); use accuracy, macro_f1 or loss"
        )
    chunk, longest = config.model.chunk, config.data.max_length
    if chunk is not None and longest is not None and chunk > longest:
        raise ValueError(
            f"model.chunk {chunk} is longer than data.max_length {longest}: every text would be one window; lower "
            "model.chunk, or raise data.max_length (null: no limit, whole texts in windows)"
        )
    if config.model.init is not None and config.model.encoder == "none":
        raise ValueError(
            "model.init: the linear model (model.encoder none) is fitted whole, it has nothing to start from"
        )
    check_rehearsal(config)


def check_rehearsal(config: Any) -> None:
    rehearsal = config.data.rehearsal
    if rehearsal is None:
        return
    if config.model.init is None:
        raise ValueError("data.rehearsal mixes in the training texts of model.init's run; set model.init (--init RUN)")
    if rehearsal == 1 or (rehearsal > 1 and rehearsal != int(rehearsal)):
        raise ValueError(
            f"data.rehearsal {rehearsal:g}: a count of texts (a whole number from 2) or a share below 1 (0.5 = half)"
        )
    if config.train.teacher is not None:
        raise ValueError("data.rehearsal and train.teacher both add training texts; use one of them")


# --- invalid for a command ----------------------------------------------------------------------------------------


def check_pretrainable(config: Any, source: object) -> None:
    """rnnclf pretrain trains this config's encoder as a language model, or says in one line why it cannot."""
    problems = pretraining_problems(config)
    if problems:
        raise RnnclfError(f"{source}: {problems[0]}")


def pretraining_problems(config: Any) -> list[str]:
    """Why rnnclf pretrain cannot train this config (each a sentence naming the key); empty when it can."""
    model, train, problems = config.model, config.train, []
    if model.encoder in ("bag", "none"):
        problems.append(f"model.encoder {model.encoder} has no recurrent layers to pretrain; use lstm, gru or rnn")
    if model.bidirectional and model.num_layers > 1:
        problems.append(
            "a bidirectional classifier's second layer reads both directions of the first, which a language model "
            "cannot (the backward states have seen the next token); pretrain model.num_layers 1 or "
            "model.bidirectional false"
        )
    if model.init is not None:
        problems.append("model.init is for classifiers; a language model starts from scratch")
    if config.data.folds is not None:
        problems.append("data.folds is rnnclf cv's (a classifier's cross-validation); remove it to pretrain")
    for key in ("lr_decay", "gradual_unfreezing"):
        if changed(train, key):
            problems.append(
                f"train.{key} is for fine-tuning a classifier (model.init); a language model trains all its layers "
                "at train.lr, so remove it here"
            )
    return problems


# `rnnclf data check --data FILE ...`: the files are the splits; these keys would be ignored
DATA_FILES_IGNORE = {
    "data.dataset": "--data names the files to check",
    "data.train": "--data names the files to check (the first is the training split)",
    "data.valid": "--data names the files to check (the first is the training split)",
    "data.test": "--data names the files to check (the first is the training split)",
    "data.valid_fraction": "--data carves no validation split: each file is checked as it is",
}


def check_data_files(overrides: list[str]) -> None:
    """data check with --data: a --set of a key the files replace is a mistake, not something to ignore."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in DATA_FILES_IGNORE:
            raise RnnclfError(f"--set {item}: {DATA_FILES_IGNORE[key]}; remove the --set")


# --- inert keys: a warning -----------------------------------------------------------------------------------------


# keys that do nothing unless another key switches their part on: a changed value is a warning, not an error,
# because switching that part with --set (optimizer, schedule, encoder) is a normal thing to try
def _recurrent(c: Any) -> bool:
    return c.model.encoder not in ("bag", "none")


def _deep(c: Any) -> bool:
    return c.model.encoder != "none"


def _wide(c: Any) -> bool:
    return c.model.wide


def _distilled(c: Any) -> bool:
    return c.train.teacher is not None


LINEAR_ONLY = "model.encoder is none: the linear model is fitted exactly, not trained in epochs"
SWITCHED = (
    ("train.momentum", lambda c: c.train.optimizer == "sgd", "train.optimizer is not sgd"),
    ("train.plateau_factor", lambda c: c.train.scheduler == "plateau", "train.scheduler is not plateau"),
    ("train.plateau_patience", lambda c: c.train.scheduler == "plateau", "train.scheduler is not plateau"),
    ("data.label_separator", lambda c: c.data.multi_label, "data.multi_label is false"),
    ("train.thresholds", lambda c: c.data.multi_label, "data.multi_label is false"),
    ("train.threshold_min_support", lambda c: c.data.multi_label, "data.multi_label is false"),
    ("train.threshold_floor", lambda c: c.data.multi_label, "data.multi_label is false"),
    *(
        (f"model.{key}", _recurrent, "model.encoder is {encoder}")
        for key in ("hidden_size", "num_layers", "bidirectional", "weight_dropout")
    ),
    *(
        (f"wide.{key}", _wide, "model.wide is false")
        for key in ("ngrams", "min_df", "max_features", "sublinear_tf", "c")
    ),
    *(
        (f"embedding.{key}", _deep, "model.encoder is none")
        for key in ("dim", "pretrained", "trainable", "dropout", "word_dropout")
    ),
    *(
        (f"model.{key}", _deep, "model.encoder is none")
        for key in ("pooling", "head_dropout", "variational_dropout", "chunk")
    ),
    ("model.chunk_pooling", lambda c: c.model.chunk is not None and _deep(c), "model.chunk is null"),
    *(
        (f"train.{key}", _distilled, "train.teacher is null")
        for key in ("teacher_loss", "teacher_temperature", "teacher_weight", "teacher_augment")
    ),
    *(
        (f"tokenizer.{key}", _deep, "model.encoder is none: the wide head reads words")
        for key in ("kind", "max_vocab", "min_freq")
    ),
    *(
        (f"train.{key}", _deep, LINEAR_ONLY)
        for key in (
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "weight_decay",
            "scheduler",
            "warmup_ratio",
            "lr_decay",
            "gradual_unfreezing",
            "grad_clip",
            "label_smoothing",
            "class_weights",
            "early_stopping",
            "save_every",
            "amp",
            "teacher",
        )
    ),
)

# keys rnnclf train never reads
TRAIN_INERT = {
    "pretrain.bptt": "a language model setting, read by rnnclf pretrain only",
    "pretrain.softmax": "a language model setting, read by rnnclf pretrain only",
}

# keys rnnclf pretrain never reads: a language model predicts every next token, and is neither pooled, weighted by
# class, calibrated nor thresholded (a test holds every other key to being read by pretrain)
PRETRAIN_INERT = {
    "model.pooling": "a classifier setting: a language model predicts at every position",
    "train.label_smoothing": "a classifier setting",
    "train.class_weights": "a classifier setting",
    "train.metric": "a classifier setting: a language model is chosen by its validation perplexity",
    "train.thresholds": "a multi-label classifier setting",
    "train.threshold_min_support": "a multi-label classifier setting",
    "train.threshold_floor": "a multi-label classifier setting",
    "train.calibration": "a classifier setting: a language model's probabilities are not calibrated",
    "train.conformal": "a classifier setting: a language model gives no prediction sets",
    "model.wide": "a classifier setting: a language model has no wide head",
    "model.chunk": "a classifier setting: a language model reads whole texts in pretrain.bptt windows",
    "model.chunk_pooling": "a classifier setting",
    **{
        f"train.{key}": "a classifier setting: a language model learns its texts, not a teacher's labels"
        for key in ("teacher", "teacher_loss", "teacher_temperature", "teacher_weight", "teacher_augment")
    },
    **{
        f"wide.{key}": "a classifier setting (model.wide)"
        for key in ("ngrams", "min_df", "max_features", "sublinear_tf", "c")
    },
}
# ... and keys that are an error there instead (check_pretrainable)
PRETRAIN_INVALID = (
    "model.init",
    "data.rehearsal",
    "train.lr_decay",
    "train.gradual_unfreezing",
    "data.folds",
    "data.fold",
    "data.fold_seed",
)


def value_of(config: Any, key: str) -> Any:
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def changed(section: Any, name: str) -> bool:
    """Whether a section's key differs from its default."""
    return getattr(section, name) != type(section).model_fields[name].default


def inert_settings(config: Any) -> list[str]:
    """One warning per switched key whose value differs from its default although nothing uses it here."""
    warnings = []
    for key, used, why in SWITCHED:
        section, name = key.split(".", 1)
        if changed(getattr(config, section), name) and not used(config):
            reason = why.format(encoder=config.model.encoder)
            warnings.append(f"{key}: {value_of(config, key)} does nothing here ({reason})")
    return warnings


def _inert(config: Any, table: dict[str, str], command: str) -> list[str]:
    return [
        f"{key}: {value_of(config, key)} does nothing in rnnclf {command} ({why})"
        for key, why in table.items()
        if changed(getattr(config, key.split(".")[0]), key.split(".", 1)[1])
    ]


def train_warnings(config: Any) -> list[str]:
    """What rnnclf train warns about before it starts."""
    lines = inert_settings(config) + _inert(config, TRAIN_INERT, "train")
    if changed(config.data, "unlabelled") and not _distilled(config):
        lines.append(
            f"data.unlabelled: {value_of(config, 'data.unlabelled')} does nothing in rnnclf train without a "
            "train.teacher to label it (rnnclf pretrain reads it too)"
        )
    return lines


def pretrain_warnings(config: Any) -> list[str]:
    """What rnnclf pretrain warns about before it starts (a key inert for both reasons is named once)."""
    own = _inert(config, PRETRAIN_INERT, "pretrain")
    switched = [line for line in inert_settings(config) if line.split(":")[0] not in PRETRAIN_INERT]
    return switched + own


# --- rnnclf tune ---------------------------------------------------------------------------------------------------

# keys a search must not move: what is measured, the data it is measured on, where runs go, and luck
UNSEARCHABLE = {
    "train.metric": "it is what the search compares",
    "train.seed": "a seed is luck, not a setting; every trial uses the config's seed",
    "output.run_dir": "each trial writes its own run directory under the tune's output folder",
}
UNSEARCHABLE_SECTIONS = {
    "data": "the data and its splits are what trials are compared on (of data.*, only data.max_length may be searched)"
}
SEARCHABLE_DATA = ("data.max_length",)


def unsearchable(key: str) -> str | None:
    """Why rnnclf tune may not search this key, or None when it may."""
    if key in UNSEARCHABLE:
        return UNSEARCHABLE[key]
    section = key.split(".")[0]
    if section in UNSEARCHABLE_SECTIONS and key not in SEARCHABLE_DATA:
        return UNSEARCHABLE_SECTIONS[section]
    return None
