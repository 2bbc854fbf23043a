"""Small untrained classifiers of every kind, and token ids as EncodedTexts."""

import itertools

import numpy as np
import torch

from rnnclf.data.tokenizer import EncodedTexts
from rnnclf.models.classifier import RNNClassifier

COMBINATIONS = [
    (encoder, bidirectional, pooling, layers)
    for encoder, bidirectional, pooling in itertools.product(
        ["rnn", "lstm", "gru"], [False, True], ["last", "mean", "max"]
    )
    for layers in (1, 2)
] + [("bag", False, "mean", 1), ("bag", False, "max", 1)]


def texts_to_encoded(texts: list[list[int]]) -> EncodedTexts:
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in texts])]).astype(np.int64)
    return EncodedTexts(np.concatenate(texts).astype(np.int32), offsets)


def build(encoder, bidirectional, pooling, layers) -> RNNClassifier:
    torch.manual_seed(0)
    model = RNNClassifier(
        vocab_size=30,
        num_classes=3,
        embedding_dim=8,
        encoder=encoder,
        hidden_size=6,
        num_layers=layers,
        bidirectional=bidirectional,
        pooling=pooling,
        dropout=0.3,
    )
    return model.eval()
