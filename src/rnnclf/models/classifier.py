"""RNNClassifier: embedding -> RNN | LSTM | GRU -> masked pooling -> linear head (the layers are in layers.py), and
optionally a wide head over the text's n-grams (wide.py) whose scores are added; with encoder "none" the wide head
is the whole model (the linear baseline)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rnnclf.config.schema import Config
from rnnclf.models.layers import (
    AttentionPool,
    Recurrent,
    SequenceDropout,
    WordEmbedding,
    encoder_arguments,
    from_windows,
    into_windows,
    masked_pool,
)
from rnnclf.models.wide import WideHead


def classifier_arguments(config: Config, wide_features: int = 0) -> dict[str, Any]:
    """RNNClassifier's keyword arguments from a config (the model itself knows no config); `wide_features`: the
    number of n-grams of the wide head (model.wide), fitted on the training texts."""
    model = config.model
    chunking = {"chunk": model.chunk, "chunk_pooling": model.chunk_pooling}
    return {**encoder_arguments(config), "pooling": model.pooling, **chunking, "wide_features": wide_features}


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
        chunk: int | None = None,
        chunk_pooling: str = "max",
        wide_features: int = 0,
    ) -> None:
        super().__init__()
        self.pooling, self.num_classes, self.deep = pooling, num_classes, encoder != "none"
        self.chunk, self.chunk_pooling = chunk, chunk_pooling
        if self.deep:
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
            streams = [embedding_dim] if self.encoder is None else [hidden_size] * (2 if bidirectional else 1)
            if pooling == "attention":  # a query per pooled stream (each direction)
                self.attention = nn.ModuleList(AttentionPool(size) for size in streams)
            if chunk is not None and chunk_pooling == "attention":
                self.window_attention = AttentionPool(features)
        self.wide = WideHead(wide_features, num_classes) if wide_features else None

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, *wide: torch.Tensor) -> torch.Tensor:
        """Logits (batch, classes) for padded ids (batch, time) and true lengths (batch,); given the wide head's
        inputs (n-gram indices, row offsets, values), its scores times its scale are added."""
        logits = self.classify_embedded(self.embedding(ids), lengths) if self.deep else None
        return self.add_wide(logits, wide)

    def add_wide(self, logits: torch.Tensor | None, wide: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if not wide or self.wide is None:
            return logits
        scores = self.wide(*wide) * self.wide.scale
        return scores if logits is None else logits + scores

    def classify_embedded(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The recurrent head's logits from embedded texts x (batch, time, dim): everything after the embedding
        lookup (integrated gradients, rnnclf.inference.explain, differentiate through it with respect to x). With
        model.chunk, each window of a text is read and pooled alone, then its windows' vectors are pooled."""
        return self.head(self.head_dropout(self.text_vectors(x, lengths)))

    def text_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """What the output layer reads: each embedded text pooled into one vector (batch, features)."""
        lengths = lengths.to(x.device)
        x = self.embedding_dropout(x)
        if self.chunk is None:
            return self.pool_time(x, lengths)
        windows, sizes, counts = into_windows(x, lengths, self.chunk)
        grid, real = from_windows(self.pool_time(windows, sizes), counts)
        return masked_pool(grid, real, self.chunk_pooling, getattr(self, "window_attention", None))

    def logits_and_vectors(
        self, ids: torch.Tensor, lengths: torch.Tensor, *wide: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """forward's logits and the text vectors they come from (rnnclf suggest's diverse choice)."""
        vectors = self.text_vectors(self.embedding(ids), lengths)
        return self.add_wide(self.head(self.head_dropout(vectors)), wide), vectors

    def pool_time(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Sequences x (batch, time, dim) of `lengths` encoded and pooled over their real steps (batch, features)."""
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        attention = getattr(self, "attention", None)
        if self.encoder is None:
            return masked_pool(x, mask, self.pooling, attention[0] if attention is not None else None)
        # each direction is pooled on its own: no (batch, time, 2 * hidden) tensor for the last layer
        directions = self.encoder(x, lengths)
        if self.pooling == "last":
            rows = torch.arange(x.shape[0], device=x.device)
            return torch.cat([outputs[rows, lengths - 1] for outputs in directions], dim=-1)
        pools = attention if attention is not None else [None] * len(directions)
        pooled = [
            masked_pool(outputs, mask, self.pooling, pool) for outputs, pool in zip(directions, pools, strict=True)
        ]
        return torch.cat(pooled, dim=-1)


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
