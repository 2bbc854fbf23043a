"""The config: pydantic models for every section, YAML loading, --set overrides, dumping.

This module imports neither torch nor tokenizers, so `rnnclf config show` starts fast.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rnnclf.errors import RnnclfError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(Section):
    dataset: str | None = Field(None, description="built-in corpus name (see `rnnclf data list`) instead of files")
    train: Path | None = Field(None, description="training file (.csv, .tsv, .jsonl)")
    valid: Path | None = Field(None, description="validation file; when absent, carved from train")
    test: Path | None = Field(None, description="test file, evaluated with the best weights after training")
    format: Literal["auto", "csv", "tsv", "jsonl"] = Field("auto", description="file format; auto = by extension")
    text_field: str = Field("text", description="column (CSV/TSV header) or key (JSONL) holding the text")
    label_field: str = Field(
        "label", description="column or key holding the label (multi-label: the labels, see data.multi_label)"
    )
    multi_label: bool = Field(
        False,
        description="several labels per text (sigmoid outputs, thresholds per label): a JSON list in JSONL, one "
        "string split on data.label_separator in CSV / TSV; an empty list is a text with no label",
    )
    label_separator: str = Field(
        "|", min_length=1, description="multi-label CSV / TSV: the separator between a text's labels"
    )
    valid_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="share of train carved out (stratified, seeded; iterative stratification for multi-label) as "
        "validation when there is no valid file",
    )
    max_length: int | None = Field(400, ge=1, description="truncate texts to this many tokens; null = no limit")
    unlabelled: list[Path] = Field(
        [],
        description="rnnclf pretrain: more texts for the language model besides the training split's: plain text "
        "(.txt, one text per line) or the text field of .jsonl / .csv / .tsv files; never read by train",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.dataset is None and self.train is None:
            raise ValueError("set either data.dataset (a built-in corpus) or data.train (a file)")
        if self.dataset is not None and self.train is not None:
            raise ValueError("set data.dataset or data.train, not both")
        if self.dataset is not None:
            # a built-in corpus brings its own files, format and fields: these keys would do nothing
            files = {"train": self.train, "valid": self.valid, "test": self.test}
            fields = {"format": (self.format, "auto"), "text_field": (self.text_field, "text")}
            fields["label_field"] = (self.label_field, "label")
            given = [key for key, value in files.items() if value is not None]
            given += [key for key, (value, default) in fields.items() if value != default]
            if given:
                raise ValueError(
                    f"data.{given[0]} does nothing with data.dataset (a built-in corpus has its own files and "
                    "fields); remove one of the two"
                )
        return self


class TokenizerConfig(Section):
    kind: Literal["word", "char", "bpe", "wordpiece"] = Field(
        "word", description="word (lowercased, punctuation split off), char, or subword bpe / wordpiece"
    )
    lowercase: bool = Field(True, description="lowercase before tokenizing")
    max_vocab: int = Field(50_000, ge=3, description="largest vocabulary, special tokens included")
    min_freq: int = Field(1, ge=1, description="drop tokens seen fewer times in the training split")


class EmbeddingConfig(Section):
    dim: int = Field(100, ge=1, description="embedding size; must match the pretrained vectors' size")
    pretrained: str | None = Field(
        None, description="word vectors: a GloVe / word2vec / fastText text file, or a named set"
    )
    trainable: bool = Field(True, description="fine-tune the embedding (false = frozen)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on embedded tokens")
    word_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="drop whole words: each step zeroes this share of the vocabulary's vectors (AWD-LSTM)",
    )


class ModelConfig(Section):
    encoder: Literal["rnn", "lstm", "gru", "bag"] = Field(
        "lstm", description="torch nn.RNN / nn.LSTM / nn.GRU, or bag (mean of embeddings, no recurrence)"
    )
    hidden_size: int = Field(128, ge=1, description="hidden units per direction")
    num_layers: int = Field(1, ge=1, description="stacked recurrent layers")
    bidirectional: bool = Field(True, description="read the text in both directions")
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="dropout between recurrent layers; above 0 needs num_layers > 1 (an error otherwise)",
    )
    pooling: Literal["last", "mean", "max"] = Field(
        "max", description="masked pooling over time; last = each sequence's true last step in each direction"
    )
    head_dropout: float = Field(
        0.2, ge=0, lt=1, description="dropout before the output layer (rnnclf pretrain: on the last layer's outputs)"
    )
    weight_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="DropConnect on the recurrent (hidden-to-hidden) weight matrices while training (AWD-LSTM)",
    )
    variational_dropout: bool = Field(
        False,
        description="embedding.dropout and model.dropout drop the same features at every time step of a text "
        "(variational / locked dropout, AWD-LSTM) instead of new ones at each step",
    )
    init: Path | None = Field(
        None,
        description="start from a language model: an `rnnclf pretrain` run directory (relative to the current "
        "folder), whose tokenizer, embedding and recurrent weights this classifier takes",
    )

    @model_validator(mode="after")
    def _pooling_fits(self) -> ModelConfig:
        if self.encoder == "bag" and self.pooling == "last":
            raise ValueError("model.pooling 'last' needs a recurrent encoder; use mean or max with encoder 'bag'")
        if self.dropout > 0 and (self.encoder == "bag" or self.num_layers == 1):
            raise ValueError(
                "model.dropout acts between recurrent layers and this model has one"
                f"{' (encoder bag has none)' if self.encoder == 'bag' else ''}; set model.num_layers >= 2, or use "
                "embedding.dropout / model.head_dropout"
            )
        return self


class TrainConfig(Section):
    epochs: int = Field(10, ge=1, description="passes over the training split")
    batch_size: int = Field(64, ge=1, description="texts per batch")
    optimizer: Literal["adam", "adamw", "sgd"] = Field("adamw", description="optimizer")
    lr: float = Field(2e-3, gt=0, lt=1e38, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="weight decay")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum (sgd only)")
    scheduler: Literal["none", "linear", "cosine", "slanted", "plateau"] = Field(
        "none",
        description="learning-rate schedule; linear/cosine decay per step, slanted = ULMFiT's slanted triangle "
        "(rises for warmup_ratio of the steps, then falls to lr / 32), plateau lowers it when the validation "
        "metric stalls",
    )
    warmup_ratio: float = Field(
        0.0, ge=0, lt=1, description="share of steps with linear warm-up (linear, cosine and slanted)"
    )
    lr_decay: float = Field(
        1.0,
        ge=1,
        description="discriminative learning rates: each layer group below the output layer (recurrent layers, "
        "then the embedding) learns this many times slower than the one above it (ULMFiT: 2.6); 1 = one rate",
    )
    gradual_unfreezing: int = Field(
        0,
        ge=0,
        description="train the output layer alone first, and unfreeze the next layer group down every this many "
        "epochs (ULMFiT: 1); 0 = everything trains from the start",
    )
    plateau_factor: float = Field(0.5, gt=0, lt=1, description="plateau: multiply the rate by this when it stalls")
    plateau_patience: int = Field(1, ge=0, description="plateau: epochs without improvement before the rate is lowered")
    grad_clip: float | None = Field(1.0, gt=0, description="clip the gradient norm; null = off")
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="label smoothing of the loss (multi-label: targets move ε/2 toward 1/2)"
    )
    class_weights: Literal["none", "balanced"] | dict[str, float] = Field(
        "none",
        description="none, balanced (inverse frequency) or {label: weight}; multi-label: the positive weight "
        "per label (balanced = negatives / positives, at most 100)",
    )
    metric: Literal["accuracy", "macro_f1", "loss", "micro_f1", "samples_f1"] = Field(
        "accuracy",
        description="validation metric that picks the best weights and drives early stopping; multi-label: "
        "micro_f1 by default, also macro_f1, samples_f1, accuracy (subset accuracy) or loss, at threshold 0.5",
    )
    thresholds: Literal["auto", "per_label", "global", "fixed"] = Field(
        "auto",
        description="multi-label decision thresholds chosen on validation after training: per_label (each "
        "label's best F1), global (one value, best micro F1), fixed (0.5), or auto (whichever of the three "
        "scores best on held-out halves of the validation split)",
    )
    threshold_min_support: int = Field(
        3, ge=1, description="per_label: labels with fewer validation positives get the global threshold"
    )
    threshold_floor: float = Field(0.05, ge=0, lt=1, description="multi-label: a tuned threshold is never below this")
    calibration: Literal["temperature", "none"] = Field(
        "temperature",
        description="after training, fit a temperature on validation that divides the logits (multi-label: one "
        "per label, before the thresholds are chosen) so that probabilities match observed frequencies; "
        "predict, eval, serve and the ONNX export apply it (calibration.json); none = raw softmax / sigmoid",
    )
    early_stopping: int | None = Field(
        None, ge=1, description="stop after this many epochs without improvement; null = off"
    )
    save_every: int | None = Field(
        None, ge=1, description="also save the training state every this many steps (for --resume); null = each epoch"
    )
    seed: int = Field(0, description="seed for the split, initialisation and batch order")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = CUDA when torch sees one")
    amp: bool = Field(True, description="mixed precision on CUDA (bf16 where supported, else fp16); ignored on CPU")
    num_threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads for torch, fixed; null = the cores that other processes leave free, re-checked every second",
    )

    @field_validator("class_weights")
    @classmethod
    def _positive_weights(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(w <= 0 for w in value.values()):
            raise ValueError("class weights must be positive")
        return value

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainConfig:
        if self.warmup_ratio > 0 and self.scheduler in ("none", "plateau"):
            raise ValueError(
                f"train.warmup_ratio needs a schedule with warm-up (linear, cosine or slanted), and train.scheduler "
                f"is '{self.scheduler}'; set train.warmup_ratio: 0 or choose linear / cosine / slanted"
            )
        return self


class OutputConfig(Section):
    run_dir: Path | None = Field(
        None, description="run directory, relative to the current folder; null = runs/<config file name>"
    )
    tensorboard: bool = Field(
        False,
        description="log loss, validation scores, learning rate and tokens/s to RUN/tensorboard/ (needs rnnclf[tensorboard])",
    )


class PretrainConfig(Section):
    bptt: int = Field(
        70,
        ge=2,
        description="rnnclf pretrain: tokens per step; longer texts are read in windows of this many, "
        "the state carried from one to the next (truncated backpropagation through time)",
    )
    softmax: Literal["auto", "full", "adaptive"] = Field(
        "auto",
        description="rnnclf pretrain: the output layer over the vocabulary; adaptive = torch's "
        "AdaptiveLogSoftmaxWithLoss (exact, and faster for large vocabularies), auto = adaptive above 10,000 tokens",
    )


class Config(Section):
    data: DataConfig
    tokenizer: TokenizerConfig = TokenizerConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    pretrain: PretrainConfig = PretrainConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="before")
    @classmethod
    def _metric_default(cls, raw: Any) -> Any:
        """Multi-label runs pick their best weights by micro F1 unless the config names a metric."""
        data, train = (raw.get(key) if isinstance(raw, dict) else None for key in ("data", "train"))
        if isinstance(data, dict) and data.get("multi_label") is True and (train is None or isinstance(train, dict)):
            train = dict(train or {})
            train.setdefault("metric", "micro_f1")
            raw = {**raw, "train": train}
        return raw

    @model_validator(mode="after")
    def _metric_fits(self) -> Config:
        if self.train.metric in ("micro_f1", "samples_f1") and not self.data.multi_label:
            raise ValueError(
                f"train.metric {self.train.metric} is a multi-label metric and data.multi_label is false (for "
                "single-label data micro F1 is accuracy); use accuracy, macro_f1 or loss"
            )
        if self.model.init is not None and self.embedding.pretrained is not None:
            raise ValueError(
                "model.init brings its embedding from the language model; remove embedding.pretrained (give it in "
                "the pretraining config instead)"
            )
        if self.model.init is not None and self.model.encoder == "bag":
            raise ValueError("model.init needs a recurrent encoder (the language model's); encoder bag has none")
        return self


SECTIONS: dict[str, type[Section]] = {name: field.annotation for name, field in Config.model_fields.items()}  # type: ignore[misc]
DATA_PATH_KEYS = ("train", "valid", "test")


def read_yaml(
    path: Path, kind: str = "config file", expected: str = "a mapping of sections (data, model, train, ...)"
) -> dict[str, Any]:
    """A YAML file holding a mapping; any problem is one line naming the file (and the line, for bad YAML)."""
    if not path.exists():
        raise RnnclfError(f"{path}: {kind} not found")
    if path.is_dir():
        raise RnnclfError(f"{path}: is a directory, expected a YAML {kind}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RnnclfError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RnnclfError(f"{path}:{where}: invalid YAML: {problem}") from None
    if raw is None:
        raise RnnclfError(f"{path}: {kind} is empty")
    if not isinstance(raw, dict):
        raise RnnclfError(f"{path}: expected {expected}, got {type(raw).__name__}")
    return raw


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys at the place where an unknown key was found."""
    if len(loc) == 1:
        return list(Config.model_fields)
    section = SECTIONS.get(str(loc[0]))
    return list(section.model_fields) if section else []


def _describe(error: dict[str, Any]) -> str:
    # loc is (section, key, <pydantic union details>...); the user knows section.key
    loc = [str(part) for part in error["loc"][:2]]
    name = ".".join(loc) or "config"
    if error["type"] == "extra_forbidden":
        candidates = _known_keys(tuple(error["loc"]))
        close = difflib.get_close_matches(loc[-1], candidates, n=1)
        suggestion = ".".join([*loc[:-1], close[0]]) if close else ""
        hint = f"; did you mean '{suggestion}'?" if close else f"; valid keys: {', '.join(candidates)}"
        return f"unknown key '{name}'{hint}"
    if error["type"] == "missing":
        return f"missing key '{name}'"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error" and len(error["loc"]) <= 1:  # a check across a section: it names the keys
        return message
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{name}: {message} (got {shown})"


def parse_config(raw: dict[str, Any], source: Path | str) -> Config:
    """Validate a config mapping; any problem becomes one line naming the file and key."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise RnnclfError(f"{source}: {_describe(exc.errors()[0])}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides; values are parsed as YAML (`3`, `true`, `null`, `[a, b]`)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise RnnclfError(f"--set {item}: expected section.key=value, e.g. train.lr=0.001")
        target = raw
        for part in parts[:-1]:
            if not isinstance(target.setdefault(part, {}), dict):
                raise RnnclfError(f"--set {item}: '{part}' is not a section")
            target = target[part]
        try:
            target[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            target[parts[-1]] = value
    return raw


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Data paths are relative to the config file's folder."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in DATA_PATH_KEYS:
        if isinstance(data.get(key), str) and data[key]:
            data[key] = str((base / data[key]).resolve())
    if isinstance(data.get("unlabelled"), str):  # one file
        data["unlabelled"] = [data["unlabelled"]]
    if isinstance(data.get("unlabelled"), list):
        data["unlabelled"] = [
            str((base / item).resolve()) if isinstance(item, str) else item for item in data["unlabelled"]
        ]
    embedding = raw.get("embedding")
    if isinstance(embedding, dict) and isinstance(embedding.get("pretrained"), str):
        # a path (not a named set such as glove-6b-50d) is relative to the config file, like the data
        value = embedding["pretrained"]
        if (base / value).exists() or any(mark in value for mark in ("/", "\\", ".")):
            embedding["pretrained"] = str((base / value).resolve())


def load_config(path: Path | str, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply overrides, resolve relative paths and fill every default."""
    path = Path(path)
    raw = apply_overrides(read_yaml(path), overrides or [])
    _resolve_paths(raw, path.resolve().parent)
    config = parse_config(raw, path)
    if config.output.run_dir is None:
        output = config.output.model_copy(update={"run_dir": Path("runs") / path.stem})
        config = config.model_copy(update={"output": output})
    if config.model.init is not None:  # a run directory, like output.run_dir: from the current folder, kept absolute
        model = config.model.model_copy(update={"init": config.model.init.absolute()})
        config = config.model_copy(update={"model": model})
    return config


# keys that do nothing unless another key switches their part on: a changed value is a warning, not an error,
# because switching that part with --set (optimizer, schedule, encoder) is a normal thing to try
_SWITCHED = (
    ("train", "momentum", lambda c: c.train.optimizer == "sgd", "train.optimizer is not sgd"),
    ("train", "plateau_factor", lambda c: c.train.scheduler == "plateau", "train.scheduler is not plateau"),
    ("train", "plateau_patience", lambda c: c.train.scheduler == "plateau", "train.scheduler is not plateau"),
    ("data", "label_separator", lambda c: c.data.multi_label, "data.multi_label is false"),
    ("train", "thresholds", lambda c: c.data.multi_label, "data.multi_label is false"),
    ("train", "threshold_min_support", lambda c: c.data.multi_label, "data.multi_label is false"),
    ("train", "threshold_floor", lambda c: c.data.multi_label, "data.multi_label is false"),
    ("model", "hidden_size", lambda c: c.model.encoder != "bag", "model.encoder is bag"),
    ("model", "num_layers", lambda c: c.model.encoder != "bag", "model.encoder is bag"),
    ("model", "bidirectional", lambda c: c.model.encoder != "bag", "model.encoder is bag"),
    ("model", "weight_dropout", lambda c: c.model.encoder != "bag", "model.encoder is bag"),
)


def inert_settings(config: Config) -> list[str]:
    """One warning per key whose value differs from its default although nothing uses it in this config."""
    warnings = []
    for section, key, used, why in _SWITCHED:
        value = getattr(getattr(config, section), key)
        if value != SECTIONS[section].model_fields[key].default and not used(config):
            warnings.append(f"{section}.{key}: {value} does nothing here ({why})")
    return warnings


def classifier_arguments(config: Config) -> dict[str, Any]:
    """RNNClassifier's keyword arguments from a config (the model itself knows no config)."""
    model, embedding = config.model, config.embedding
    return {
        "embedding_dim": embedding.dim,
        "trainable_embedding": embedding.trainable,
        "embedding_dropout": embedding.dropout,
        "word_dropout": embedding.word_dropout,
        "encoder": model.encoder,
        "hidden_size": model.hidden_size,
        "num_layers": model.num_layers,
        "bidirectional": model.bidirectional,
        "dropout": model.dropout,
        "weight_dropout": model.weight_dropout,
        "variational": model.variational_dropout,
        "pooling": model.pooling,
        "head_dropout": model.head_dropout,
    }


def tokenizer_settings(config: Config) -> dict[str, Any]:
    """rnnclf.tokenizer.build_tokenizer's keyword arguments."""
    return config.tokenizer.model_dump()


def config_to_dict(config: Config) -> dict[str, Any]:
    return config.model_dump(mode="json")


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


def reference_rows() -> list[tuple[str, str, str]]:
    """(key, default, meaning) for every config key: the README's config reference."""
    rows = []
    for section_name, section in SECTIONS.items():
        for key, field in section.model_fields.items():
            default = (
                "required"
                if field.is_required()
                else yaml.safe_dump(
                    field.default if not isinstance(field.default, Path) else str(field.default),
                    default_flow_style=True,
                )
                .strip()
                .removesuffix("...")
                .strip()
            )
            rows.append((f"{section_name}.{key}", default, field.description or ""))
    return rows
