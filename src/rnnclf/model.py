"""RNNClassifier: embedding -> RNN | LSTM | GRU (packed) -> masked pooling -> linear.

Sequences are packed, so a text's prediction does not depend on how much padding its batch has.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnclf.config import EmbeddingConfig, ModelConfig
from rnnclf.text import PAD_ID

RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNNClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embedding: EmbeddingConfig, model: ModelConfig) -> None:
        super().__init__()
        self.pooling = model.pooling
        self.embedding = nn.Embedding(vocab_size, embedding.dim, padding_idx=PAD_ID)
        self.embedding.weight.requires_grad_(embedding.trainable)
        self.embedding_dropout = nn.Dropout(embedding.dropout)
        if model.encoder == "bag":
            self.encoder = None  # the lesson's EmbeddingBag baseline: pool the embeddings themselves
            features = embedding.dim
        else:
            self.encoder = RECURRENT[model.encoder](
                input_size=embedding.dim,
                hidden_size=model.hidden_size,
                num_layers=model.num_layers,
                bidirectional=model.bidirectional,
                dropout=model.dropout if model.num_layers > 1 else 0.0,
                batch_first=True,
            )
            features = model.hidden_size * (2 if model.bidirectional else 1)
        self.head_dropout = nn.Dropout(model.head_dropout)
        self.head = nn.Linear(features, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (batch, classes) for padded ids (batch, time) and true lengths (batch,) on the CPU."""
        x = self.embedding_dropout(self.embedding(ids))
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths.to(ids.device)[:, None]
        if self.encoder is None:
            pooled = masked_pool(x, mask, self.pooling)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            outputs, hidden = self.encoder(packed)
            if self.pooling == "last":
                pooled = last_states(hidden[0] if isinstance(hidden, tuple) else hidden, self.encoder.bidirectional)
            else:
                # the padded width is the longest length in the batch, which can be less than ids.shape[1]
                outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=ids.shape[1])
                pooled = masked_pool(outputs, mask, self.pooling)
        return self.head(self.head_dropout(pooled))


def last_states(hidden: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """The top layer's final state in each direction: forward after each text's true last token,
    backward after its first token (packing makes both exact)."""
    if bidirectional:
        return torch.cat([hidden[-2], hidden[-1]], dim=-1)
    return hidden[-1]


def masked_pool(x: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Mean or max over the real time steps of x (batch, time, features)."""
    mask = mask.unsqueeze(-1)
    if how == "max":
        return x.masked_fill(~mask, torch.finfo(x.dtype).min).max(dim=1).values
    total = (x * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1).to(x.dtype)


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
