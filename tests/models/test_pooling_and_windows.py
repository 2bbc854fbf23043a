"""Attention pooling and long texts read in windows (model.chunk) never let padding or batching change a
prediction, and a text that fits one window is read as it would be without windows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rnnclf.data.batching import bucket_by_length, sequential_batches
from rnnclf.data.tokenizer import EncodedTexts
from rnnclf.inference.logits import predict_logits
from rnnclf.models.classifier import RNNClassifier
from rnnclf.models.layers import from_windows, into_windows


def model(**settings) -> RNNClassifier:
    torch.manual_seed(0)
    built = RNNClassifier(40, 4, embedding_dim=6, hidden_size=5, **settings).eval()
    for pool in [*getattr(built, "attention", []), getattr(built, "window_attention", None)]:
        if pool is not None:
            pool.query.data.normal_()  # a query that weighs steps unevenly (it starts at 0: the mean)
    return built


def texts(count: int, longest: int, seed: int = 0) -> EncodedTexts:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, longest, size=count)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return EncodedTexts(rng.integers(2, 40, size=offsets[-1]).astype(np.int32), offsets)


CASES = [
    {"encoder": encoder, "pooling": pooling, "bidirectional": bidirectional, **chunk}
    for encoder, pooling, bidirectional, chunk in itertools.product(
        ["gru", "lstm"],
        ["attention", "max", "last"],
        [True, False],
        [{}, {"chunk": 4, "chunk_pooling": "max"}, {"chunk": 3, "chunk_pooling": "attention"}],
    )
] + [
    {"encoder": "bag", "pooling": "attention"},
    {"encoder": "bag", "pooling": "mean", "chunk": 5, "chunk_pooling": "mean"},
]


@pytest.mark.parametrize("settings", CASES, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_padding_and_batching_change_no_prediction(settings):
    classifier, encoded = model(**settings), texts(40, 23)
    alone = np.concatenate(
        [predict_logits(classifier, encoded.take(np.array([i])), torch.device("cpu")) for i in range(40)]
    )
    for batch_size in (1, 7, 40):
        np.testing.assert_allclose(
            predict_logits(classifier, encoded, torch.device("cpu"), batch_size=batch_size), alone, atol=2e-6
        )


def test_a_text_within_one_window_reads_as_without_windows():
    whole, windowed = model(encoder="gru", pooling="attention"), model(encoder="gru", pooling="attention", chunk=30)
    windowed.load_state_dict(whole.state_dict())
    encoded = texts(20, 30)  # every text shorter than the window
    np.testing.assert_allclose(
        predict_logits(windowed, encoded, torch.device("cpu")),
        predict_logits(whole, encoded, torch.device("cpu")),
        atol=1e-6,
    )


def test_windows_cut_each_text_from_its_start():
    x = torch.arange(2 * 7, dtype=torch.float32).view(2, 7, 1)
    windows, sizes, counts = into_windows(x, torch.tensor([7, 3]), 3)
    assert counts.tolist() == [3, 1] and sizes.tolist() == [3, 3, 1, 3]
    assert windows[:, :, 0].tolist() == [[0, 1, 2], [3, 4, 5], [6, 0, 0], [7, 8, 9]]
    grid, real = from_windows(windows[:, 0, :], counts)
    assert real.tolist() == [[True, True, True], [True, False, False]] and grid[1, 0, 0] == 7


def test_attention_starts_as_the_mean_and_ignores_padding():
    classifier = RNNClassifier(40, 3, embedding_dim=4, encoder="bag", pooling="attention")
    mean = RNNClassifier(40, 3, embedding_dim=4, encoder="bag", pooling="mean")
    mean.load_state_dict(classifier.state_dict(), strict=False)
    encoded = texts(10, 9)
    np.testing.assert_allclose(
        predict_logits(classifier, encoded, torch.device("cpu")),
        predict_logits(mean, encoded, torch.device("cpu")),
        atol=1e-6,
    )


def test_a_batch_of_windows_holds_at_most_batch_size_windows():
    lengths = np.random.default_rng(3).integers(1, 200, size=500)
    windows = -(-lengths // 16)
    for batches in (
        bucket_by_length(lengths, 32, seed=1, epoch=2, window=16),
        sequential_batches(lengths, 32, window=16),
    ):
        assert sorted(np.concatenate(batches).tolist()) == list(range(500))  # every text once
        assert all(windows[b].sum() <= 32 or len(b) == 1 for b in batches)
        assert max(windows[b].sum() for b in batches) > 24  # and batches are filled, not one text each
