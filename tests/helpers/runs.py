"""The configs of the runs that tests in several folders share (their fixtures are in tests/conftest.py), training
a run in-process, and the yardsticks tests measure runs against, computed from the run directory."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from rnnclf.config.loading import load_config
from rnnclf.data.corpus import label_targets, load_corpus
from rnnclf.data.tokenizer import encode, load_tokenizer
from rnnclf.inference.evaluate import labelled_split
from rnnclf.models.language_model import LanguageModel, direction_streams, language_model_arguments, windows
from rnnclf.recipes.classify import train
from rnnclf.runs.directory import load_run

from helpers.data import TOPICS

MULTI_LABEL_LABELS = sorted(TOPICS)
MULTI_LABEL_CONFIG = (
    "data: {train: train.jsonl, test: test.jsonl, multi_label: true, label_field: labels, max_length: 40}\n"
    "embedding: {dim: 32}\n"
    "model: {encoder: gru, hidden_size: 32}\n"
    "train: {epochs: 5, batch_size: 32, lr: 0.005, num_threads: 1, thresholds: per_label}\n"
)
CALIBRATION_CONFIG = (
    "data: {train: train.csv, test: test.csv, valid_fraction: 0.2}\n"
    "embedding: {dim: 16}\n"
    "model: {encoder: gru, hidden_size: 24, head_dropout: 0.0}\n"
    "train: {epochs: 4, batch_size: 32, lr: 0.01, seed: 0, num_threads: 1}\n"
)
ENSEMBLE_CONFIG = (  # members of one ensemble: seeds 0 and 1 share the validation split data.valid_seed carves
    "data: {train: train.csv, test: test.csv, valid_seed: 0, valid_fraction: 0.2}\n"
    "embedding: {dim: 16}\n"
    "model: {encoder: gru, hidden_size: 16}\n"
    "train: {epochs: 2, batch_size: 32, lr: 0.01, num_threads: 1}\n"
)
LM_CONFIG = (
    "data: {train: train.csv, test: test.csv, max_length: null}\n"
    "embedding: {dim: 16, dropout: 0.1, word_dropout: 0.05}\n"
    "model: {encoder: gru, hidden_size: 32, weight_dropout: 0.2, variational_dropout: true, head_dropout: 0.1}\n"
    "train: {epochs: 3, batch_size: 16, lr: 0.01, num_threads: 1}\n"
    "pretrain: {bptt: 4}\n"
)
CLASSIFIER_FROM_LM_CONFIG = (
    "data: {train: train.csv, test: test.csv}\n"
    "embedding: {dim: 16}\n"
    "model: {encoder: gru, hidden_size: 32, init: lm}\n"
    "train: {epochs: 2, batch_size: 16, lr: 0.005, num_threads: 1}\n"
)


def train_run(workspace: Path, name: str, *overrides: str, log: Callable[[str], None] | None = None) -> Path:
    """workspace/config.yaml trained in-process into workspace/NAME."""
    run = workspace / name
    config = load_config(workspace / "config.yaml", [f"output.run_dir={run}", *overrides])
    train(config, command=["test"], log=log or (lambda line: None))
    return run


def all_positive_micro_f1(run_dir: Path, split: str) -> float:
    """Micro F1 of predicting every label for every text of the run's split: recall 1, precision the share of
    (text, label) pairs that are positive."""
    run = load_run(run_dir)
    labelled, _ = labelled_split(run, None, split)
    precision = float(label_targets(labelled.labels, run.labels, True).mean())
    return 2 * precision / (precision + 1)


def language_model_perplexities(run_dir: Path) -> tuple[float, float]:
    """The validation perplexity of a pretrain run's saved model, computed here text by text (each text in one
    window, both directions), and that of a unigram model of the training split's token counts (add-one) on the
    same next tokens: the bar a language model that learnt only word frequencies would stand at."""
    config = load_config(run_dir / "config.yaml")
    corpus = load_corpus(config.data, config.train.seed)
    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
    model = LanguageModel(tokenizer.get_vocab_size(), **language_model_arguments(config))
    model.load_state_dict(load_file(run_dir / "model.safetensors"))
    model.eval()
    counts = np.bincount(encode(tokenizer, corpus.train.texts).ids, minlength=tokenizer.get_vocab_size()) + 1
    unigram = -np.log(counts / counts.sum())
    valid = encode(tokenizer, corpus.valid.texts)
    model_nll = unigram_nll = targets_seen = 0.0
    with torch.no_grad():
        for start, end in itertools.pairwise(valid.offsets):
            ids = torch.from_numpy(valid.ids[start:end].astype(np.int64))[None]
            streams = direction_streams(ids, torch.tensor([ids.shape[1]]), model.encoder.bidirectional)
            for inputs, targets in windows(streams, ids.shape[1]):
                total, count, _ = model(inputs, targets, [None] * len(streams))
                model_nll, targets_seen = model_nll + float(total), targets_seen + int(count)
                unigram_nll += sum(float(unigram[target.numpy()].sum()) for target in targets)
    assert targets_seen == len(streams) * (len(valid.ids) - len(valid)), "every next token once per direction"
    return math.exp(model_nll / targets_seen), math.exp(unigram_nll / targets_seen)
