"""RNNClassifier: embedding -> RNN | LSTM | GRU -> masked pooling -> linear head (the layers are in layers.py)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rnnclf.config.schema import Config
from rnnclf.models.layers import Recurrent, SequenceDropout, WordEmbedding, encoder_arguments, masked_pool


def classifier_arguments(config: Config) -> dict[str, Any]:
    """RNNClassifier's keyword arguments from a config (the model itself knows no config)."""
    return {**encoder_arguments(config), "pooling": config.model.pooling}


class RNNClassifier(nn.Module):
    """Built from plain arguments (classifier_arguments maps a config onto them)."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        embedding_dim: int = 100,
        trainable_embedding: bool = True,
        embedding_dropout: float = 0.0,
        word_dropout: float = 0.0,
        encoder: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        weight_dropout: float = 0.0,
        variational: bool = False,
        pooling: str = "max",
        head_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.embedding = WordEmbedding(vocab_size, embedding_dim, word_dropout)
        self.embedding.weight.requires_grad_(trainable_embedding)
        self.embedding_dropout = SequenceDropout(embedding_dropout, variational)
        if encoder == "bag":
            self.encoder = None  # the lesson's EmbeddingBag baseline: pool the embeddings themselves
            features = embedding_dim
        else:
            self.encoder = Recurrent(
                encoder, embedding_dim, hidden_size, num_layers, bidirectional, dropout, weight_dropout, variational
            )
            features = self.encoder.output_size
        self.head_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(features, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (batch, classes) for padded ids (batch, time) and true lengths (batch,)."""
        return self.classify_embedded(self.embedding(ids), lengths)

    def classify_embedded(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits from embedded texts x (batch, time, dim): everything after the embedding lookup (integrated
        gradients, rnnclf.inference.explain, differentiate through it with respect to x)."""
        lengths = lengths.to(x.device)
        x = self.embedding_dropout(x)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        if self.encoder is None:
            pooled = masked_pool(x, mask, self.pooling)
        else:
            # each direction is pooled on its own: no (batch, time, 2 * hidden) tensor for the last layer
            directions = self.encoder(x, lengths)
            if self.pooling == "last":
                rows = torch.arange(x.shape[0], device=x.device)
                pooled = torch.cat([outputs[rows, lengths - 1] for outputs in directions], dim=-1)
            else:
                pooled = torch.cat([masked_pool(outputs, mask, self.pooling) for outputs in directions], dim=-1)
        return self.head(self.head_dropout(pooled))


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
