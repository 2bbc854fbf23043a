"""RNNClassifier: embedding -> RNN | LSTM | GRU -> masked pooling -> linear.

Padding never changes a prediction, and the recurrent layers still run on whole dense batches
(torch's fast fused kernels, several times faster on CPU than packed sequences):
- the forward direction is causal, so its outputs before each text's end ignore the padding after it;
- the backward direction reads each text reversed within its own length, so its padding also comes
  last; between layers its outputs are flipped back into place.
Each direction of the last layer is pooled on its own (masked; `last` takes each direction's state
after its own last real token), so no flip or concatenation of the full outputs is needed there.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnclf.tokenizer import PAD_ID

RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNNClassifier(nn.Module):
    """Built from plain arguments (rnnclf.config.classifier_arguments maps a config onto them)."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        embedding_dim: int = 100,
        trainable_embedding: bool = True,
        embedding_dropout: float = 0.0,
        encoder: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        pooling: str = "max",
        head_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.embedding.weight.requires_grad_(trainable_embedding)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        if encoder == "bag":
            self.encoder = None  # the lesson's EmbeddingBag baseline: pool the embeddings themselves
            features = embedding_dim
        else:
            self.encoder = Recurrent(encoder, embedding_dim, hidden_size, num_layers, bidirectional, dropout)
            features = self.encoder.output_size
        self.head_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(features, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (batch, classes) for padded ids (batch, time) and true lengths (batch,)."""
        lengths = lengths.to(ids.device)
        x = self.embedding_dropout(self.embedding(ids))
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]
        if self.encoder is None:
            pooled = masked_pool(x, mask, self.pooling)
        else:
            # each direction is pooled on its own: no (batch, time, 2 * hidden) tensor for the last layer
            directions = self.encoder(x, lengths)
            if self.pooling == "last":
                rows = torch.arange(ids.shape[0], device=ids.device)
                pooled = torch.cat([outputs[rows, lengths - 1] for outputs in directions], dim=-1)
            else:
                pooled = torch.cat([masked_pool(outputs, mask, self.pooling) for outputs in directions], dim=-1)
        return self.head(self.head_dropout(pooled))


class Recurrent(nn.Module):
    """Stacked, optionally bidirectional torch RNN / LSTM / GRU layers that are exact under padding."""

    def __init__(
        self, kind: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        self.output_size = hidden_size * directions

        def layers() -> nn.ModuleList:
            sizes = [input_size] + [self.output_size] * (num_layers - 1)
            return nn.ModuleList(RECURRENT[kind](size, hidden_size, batch_first=True) for size in sizes)

        self.forward_layers = layers()
        self.backward_layers = layers() if bidirectional else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """The last layer's outputs (batch, time, hidden), one tensor per direction; positions past a text's
        length hold garbage (mask them). The backward direction's outputs stay in its reading order, reversed
        within each text: masked pooling does not care, and its state after the whole text sits at length - 1.
        """
        reverse = reversal_index(lengths, x.shape[1]) if self.bidirectional else None
        for depth, forward_layer in enumerate(self.forward_layers):
            if depth:
                x = self.dropout(x)
            directions = [forward_layer(x)[0]]
            if self.backward_layers is not None:
                directions.append(self.backward_layers[depth](flip(x, reverse))[0])
            if depth + 1 < len(self.forward_layers):
                x = (
                    directions[0]
                    if len(directions) == 1
                    else torch.cat([directions[0], flip(directions[1], reverse)], -1)
                )
        return directions


def reversal_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Index that reverses each row's first `length` positions and leaves its padding in place."""
    positions = torch.arange(width, device=lengths.device)[None, :]
    return torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)


def flip(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


def masked_pool(x: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Mean or max over the real time steps of x (batch, time, features)."""
    mask = mask.unsqueeze(-1)
    if how == "max":
        return x.masked_fill(~mask, torch.finfo(x.dtype).min).max(dim=1).values
    total = x.masked_fill(~mask, 0.0).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1).to(x.dtype)


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
