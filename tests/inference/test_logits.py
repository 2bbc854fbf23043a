"""Predicting logits: any number of worker threads gives the same answer, and never touches the thread count."""

import numpy as np
import torch

from rnnclf.data.tokenizer import EncodedTexts
from rnnclf.inference.logits import predict_logits
from rnnclf.models.classifier import RNNClassifier


def random_texts(count: int, seed: int = 0) -> EncodedTexts:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, size=count)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return EncodedTexts(rng.integers(2, 50, size=offsets[-1]).astype(np.int32), offsets)


def test_prediction_never_changes_the_thread_count(monkeypatch):
    """Threads are a process-wide setting made once per command: concurrent requests must not race on it."""
    torch.manual_seed(0)
    model = RNNClassifier(50, 3, embedding_dim=8, encoder="gru", hidden_size=8)
    encoded = random_texts(500)
    expected = predict_logits(model, encoded, torch.device("cpu"), workers=1)

    def forbidden(count: int) -> None:
        raise AssertionError("torch.set_num_threads called while predicting")

    monkeypatch.setattr(torch, "set_num_threads", forbidden)
    for workers in (1, 2, 4):
        got = predict_logits(model, encoded, torch.device("cpu"), workers=workers)
        np.testing.assert_array_equal(got, expected)
