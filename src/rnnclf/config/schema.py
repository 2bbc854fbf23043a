"""The config's sections as pydantic models: every key, its type, default and meaning; their validators apply
the rules of rules.py. Imports neither torch nor tokenizers, so `rnnclf config show` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rnnclf.config import rules


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
    valid_seed: int | None = Field(
        None,
        description="seed of the carved validation split; null = train.seed. Fix it when runs of several seeds "
        "will form an ensemble (rnnclf ensemble): they then share a validation split none of them trained on",
    )
    folds: int | None = Field(
        None,
        ge=2,
        description="cross-validation (rnnclf cv sets it): the training split is cut into this many stratified "
        "folds (iterative stratification for multi-label), and data.fold is held out as the run's test split",
    )
    fold: int | None = Field(
        None, ge=0, description="cross-validation: the fold held out, 0 to data.folds - 1 (with data.folds)"
    )
    fold_seed: int = Field(0, description="cross-validation: the seed that assigns training texts to folds")
    rehearsal: float | None = Field(
        None,
        gt=0,
        description="with model.init naming a classifier run (an update): that run's training texts mixed into each "
        "epoch, drawn anew every epoch, so that its labels are not forgotten: a count (1000) or a share of them "
        "(0.2); its validation texts join this run's validation split. null = the new training split alone",
    )
    max_length: int | None = Field(400, ge=1, description="truncate texts to this many tokens; null = no limit")
    unlabelled: list[Path] = Field(
        [],
        description="more texts without labels: plain text (.txt, one text per line) or the text field of .jsonl "
        "/ .csv / .tsv files; rnnclf pretrain reads them besides the training split's, and rnnclf train with a "
        "train.teacher trains on them with the teacher's labels",
    )

    @field_validator("rehearsal", mode="before")
    @classmethod
    def _a_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a count of texts (1000) or a share of them (0.2), not true / false")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        rules.check_data_source(self)
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
    encoder: Literal["rnn", "lstm", "gru", "bag", "none"] = Field(
        "lstm",
        description="torch nn.RNN / nn.LSTM / nn.GRU, bag (mean of embeddings, no recurrence), or none (with "
        "model.wide: the linear n-gram model alone, fitted in seconds)",
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
    pooling: Literal["last", "mean", "max", "attention"] = Field(
        "max",
        description="masked pooling over time; last = each sequence's true last step in each direction, attention = "
        "a learned query over the steps (one per direction)",
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
    chunk: int | None = Field(
        None,
        ge=2,
        description="read each text in windows of this many tokens, each encoded and pooled alone, then the "
        "windows pooled (model.chunk_pooling): long texts whole, within data.max_length (null there: no limit); "
        "train.batch_size then counts windows; null = one window",
    )
    chunk_pooling: Literal["max", "mean", "attention"] = Field(
        "max", description="model.chunk: how a text's window vectors are pooled"
    )
    wide: bool = Field(
        False,
        description="add a wide head: a linear model over the text's word n-grams (wide.*), fitted first on the "
        "training split (C on validation), its scores added to the recurrent head's with a weight chosen on validation",
    )
    init: Path | None = Field(
        None,
        description="start from an earlier run (a directory, relative to the current folder): an `rnnclf pretrain` "
        "language model, whose tokenizer, embedding and recurrent weights this classifier takes; or a finished "
        "classifier run (rnnclf train --init), whose tokenizer, weights and labels it continues from, with rows for "
        "new words and outputs for new labels (see data.rehearsal)",
    )

    @model_validator(mode="after")
    def _pooling_fits(self) -> ModelConfig:
        rules.check_model(self)
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
    conformal: Literal["lac", "aps"] = Field(
        "lac",
        description="prediction sets (predict / eval / serve --coverage), fitted on validation after the temperature "
        "(conformal.json): lac (a label is in the set when its probability is high enough: the smallest sets) or "
        "aps (classes in order of probability until their sum is high enough: sets adapt to hard texts); "
        "class-conditional for classes with enough validation texts; multi-label runs control recall instead",
    )
    early_stopping: int | None = Field(
        None, ge=1, description="stop after this many epochs without improvement; null = off"
    )
    save_every: int | None = Field(
        None, ge=1, description="also save the training state every this many steps (for --resume); null = each epoch"
    )
    teacher: Path | None = Field(
        None,
        description="distil from a teacher (relative to the current folder): a run or ensemble directory, or a "
        'JSONL file of each text\'s probabilities or logits from any model, one {"text" or "id": ..., "probs" '
        'or "logits": {label: value}} per line; the loss mixes the gold labels with the teacher\'s soft targets '
        "and data.unlabelled joins training, labelled by the teacher (docs/distillation.md)",
    )
    teacher_loss: Literal["kl", "mse"] = Field(
        "kl",
        description="kl: the KL divergence from the teacher's probabilities at train.teacher_temperature, times "
        "its square (Hinton et al. 2015); mse: the squared difference of student and teacher logits (Tang et al. 2019)",
    )
    teacher_temperature: float = Field(
        2.0, gt=0, le=100, description="kl: the temperature that softens both the teacher's and the student's outputs"
    )
    teacher_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="the teacher's share of the loss of a text with a gold label (1: the teacher alone, 0: the gold "
        "label alone); texts without one (data.unlabelled, train.teacher_augment) learn from the teacher only",
    )
    teacher_augment: int = Field(
        0,
        ge=0,
        le=20,
        description="this many altered copies of each training text (each word dropped with probability 0.1; one "
        "in four cut to a random span), labelled by the teacher alone (Tang et al. 2019)",
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
        rules.check_train(self)
        return self


class OutputConfig(Section):
    run_dir: Path | None = Field(
        None, description="run directory, relative to the current folder; null = runs/<config file name>"
    )
    tensorboard: bool = Field(
        False,
        description="log loss, validation scores, learning rate and tokens/s to RUN/tensorboard/ (needs rnnclf[tensorboard])",
    )


class WideConfig(Section):
    ngrams: int = Field(2, ge=1, le=3, description="model.wide: word n-grams of 1 to this many words")
    min_df: int = Field(2, ge=1, description="model.wide: keep n-grams in at least this many training texts")
    max_features: int = Field(
        500_000, ge=1, description="model.wide: keep at most this many n-grams, the most frequent in training"
    )
    sublinear_tf: bool = Field(True, description="model.wide: weigh an n-gram's count as 1 + log(count)")
    c: float | None = Field(
        None,
        gt=0,
        description="model.wide: the inverse regularisation C of the linear fit (scikit-learn LinearSVC's); null "
        "= chosen on the validation split among 0.1, 0.3, 1, 3, 10, 30",
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
    wide: WideConfig = WideConfig()
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
        rules.check_config(self)
        return self


SECTIONS: dict[str, type[Section]] = {name: field.annotation for name, field in Config.model_fields.items()}  # type: ignore[misc]


DATA_PATH_KEYS = ("train", "valid", "test")
