"""The two training pipelines the benchmark times: rnnclf's own (its batching, model and TrainStep) and the
lesson notebook's (DataLoader with random batches, Python regex tokenizer + dict vocabulary in the collate
function, packed nn.LSTM / GRU)."""

from __future__ import annotations

import itertools
import math
import re
import time
from collections import Counter
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader

from rnnclf.config.schema import Config
from rnnclf.data.batching import bucket_by_length, collate
from rnnclf.data.token_cache import Prepared
from rnnclf.device.precision import choose_precision
from rnnclf.models.classifier import RNNClassifier, classifier_arguments
from rnnclf.training.losses import class_weight_tensor
from rnnclf.training.step import build_step

# A step generator does one training step per next() and yields (real tokens, padded positions, data seconds).
Steps = Iterator[tuple[int, int, float]]


def rnnclf_steps(config: Config, prepared: Prepared, device: torch.device) -> Steps:
    """rnnclf's pipeline: cached token ids -> length-bucketed batches -> RNNClassifier -> the TrainStep that
    `rnnclf train` runs (its loss, optimizer, schedule, clipping, AMP and scaler on CUDA)."""
    torch.manual_seed(config.train.seed)
    vocab_size, labels = prepared.tokenizer.get_vocab_size(), prepared.labels
    model = RNNClassifier(vocab_size, len(labels), **classifier_arguments(config)).to(device).train()
    encoded, targets = prepared.encoded["train"], prepared.targets["train"]
    weights = class_weight_tensor(config.train.class_weights, labels, targets)
    steps = math.ceil(len(encoded) / config.train.batch_size) * config.train.epochs
    step = build_step(model, model, config.train, weights, steps, device, choose_precision(device, config.train.amp))
    for epoch in itertools.count(1):
        for index in bucket_by_length(encoded.lengths, config.train.batch_size, config.train.seed, epoch):
            start = time.perf_counter()
            batch = collate(encoded, index, targets)  # what rnnclf.data.batching.iterate yields
            data_seconds = time.perf_counter() - start
            step(batch)
            yield batch.num_tokens, batch.ids.numel(), data_seconds


# -------------------------------------------------------------------------- the lesson notebook's pipeline

# torchtext's basic_english, as the notebook used it: lowercase, split off punctuation, split on whitespace
_BASIC_ENGLISH = [
    (re.compile(pattern), replacement)
    for pattern, replacement in [
        (r"\'", " '  "),
        (r"\"", ""),
        (r"\.", " . "),
        (r"<br \/>", " "),
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"\!", " ! "),
        (r"\?", " ? "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\s+", " "),
    ]
]


def basic_english(text: str) -> list[str]:
    text = text.lower()
    for pattern, replacement in _BASIC_ENGLISH:
        text = pattern.sub(replacement, text)
    return text.split()


def naive_vocabulary(texts: list[str], max_size: int) -> dict[str, int]:
    """A Python dict: <pad> 0, <unk> 1, then the most frequent training tokens."""
    counts = Counter(token for text in texts for token in basic_english(text))
    words = ["<pad>", "<unk>"] + [word for word, _ in counts.most_common(max_size - 2)]
    return {word: index for index, word in enumerate(words)}


class NaiveRNN(nn.Module):
    """Embedding -> packed nn.LSTM / nn.GRU -> max over time -> linear; the sizes of the workload's config."""

    def __init__(self, vocab_size: int, num_classes: int, config: Config) -> None:
        super().__init__()
        dim, hidden, directions = config.embedding.dim, config.model.hidden_size, 1 + config.model.bidirectional
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        recurrent = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[config.model.encoder]
        self.lstm = recurrent(dim, hidden, batch_first=True, bidirectional=directions == 2)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(directions * hidden, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        padded, _ = pad_packed_sequence(outputs, batch_first=True, padding_value=float("-inf"))
        return self.head(self.dropout(padded.max(dim=1).values))


def naive_steps(
    config: Config, texts: list[str], targets: list[int], vocab: dict[str, int], device: torch.device
) -> Steps:
    """The notebook's pipeline: raw rows, shuffled DataLoader, tokenizing and padding in collate, no caching.

    Texts are cut to the same max_length as rnnclf's (the notebook had no limit: that would be slower still).
    """
    max_length = config.data.max_length

    def collate_rows(rows: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = [
            torch.tensor([vocab.get(token, 1) for token in basic_english(text)[:max_length]] or [1]) for text, _ in rows
        ]
        lengths = torch.tensor([len(row) for row in ids])
        return pad_sequence(ids, batch_first=True, padding_value=0), lengths, torch.tensor([label for _, label in rows])

    torch.manual_seed(config.train.seed)
    rows = list(zip(texts, targets, strict=True))
    loader = DataLoader(rows, batch_size=config.train.batch_size, shuffle=True, collate_fn=collate_rows)
    model = NaiveRNN(len(vocab), max(targets) + 1, config)
    model.to(device).train()  # fp32 on any device, as the notebook
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    while True:
        batches = iter(loader)
        while True:
            start = time.perf_counter()
            batch = next(batches, None)
            data_seconds = time.perf_counter() - start
            if batch is None:
                break
            ids, lengths, labels = batch
            loss = nn.functional.cross_entropy(model(ids.to(device), lengths), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            yield int(lengths.sum()), ids.numel(), data_seconds
