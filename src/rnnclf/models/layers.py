"""The layers a classifier and a language model share: word embedding, dropouts, the recurrent encoder,
masked pooling; and the config keys that build them.

Padding never changes a prediction, and the recurrent layers still run on whole dense batches
(torch's fast fused kernels, several times faster on CPU than packed sequences):
- the forward direction is causal, so its outputs before each text's end ignore the padding after it;
- the backward direction reads each text reversed within its own length, so its padding also comes
  last; between layers its outputs are flipped back into place.
Each direction of the last layer is pooled on its own (masked; `last` takes each direction's state
after its own last real token), so no flip or concatenation of the full outputs is needed there.

The AWD-LSTM regularisers act only while training, so an evaluated or exported model is the plain one:
word dropout (whole vocabulary rows), variational dropout (one mask per text for all its time steps) and
DropConnect on the recurrent matrices (weight dropout, through torch.func.functional_call, which keeps the
fused kernels and the parameter names).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from rnnclf.config.schema import Config
from rnnclf.data.tokenizer import PAD_ID


def encoder_arguments(config: Config) -> dict[str, Any]:
    """The embedding's and the recurrent encoder's keyword arguments from a config (a classifier and a language
    model share them)."""
    model, embedding = config.model, config.embedding
    return {
        "embedding_dim": embedding.dim,
        "trainable_embedding": embedding.trainable,
        "embedding_dropout": embedding.dropout,
        "word_dropout": embedding.word_dropout,
        "encoder": model.encoder,
        "hidden_size": model.hidden_size,
        "num_layers": model.num_layers,
        "bidirectional": model.bidirectional,
        "dropout": model.dropout,
        "weight_dropout": model.weight_dropout,
        "variational": model.variational_dropout,
        "head_dropout": model.head_dropout,
    }


RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class WordEmbedding(nn.Embedding):
    """nn.Embedding that, while training, drops whole words: a share `word_dropout` of the vocabulary's rows is
    zeroed for the step (the others scaled up), so a dropped word is missing wherever it occurs."""

    def __init__(self, vocab_size: int, dim: int, word_dropout: float = 0.0) -> None:
        super().__init__(vocab_size, dim, padding_idx=PAD_ID)
        self.word_dropout = word_dropout

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.training or self.word_dropout == 0:
            return super().forward(ids)
        keep = torch.empty_like(self.weight[:, 0]).bernoulli_(1 - self.word_dropout) / (1 - self.word_dropout)
        return super().forward(ids) * keep[ids].unsqueeze(-1)


class SequenceDropout(nn.Module):
    """Dropout on (batch, time, features); `variational`: one mask per text, the same at every time step."""

    def __init__(self, p: float, variational: bool = False) -> None:
        super().__init__()
        self.p, self.variational = p, variational

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if not self.variational:
            return F.dropout(x, self.p, True)
        mask = torch.empty_like(x[:, :1]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


class Recurrent(nn.Module):
    """Stacked, optionally bidirectional torch RNN / LSTM / GRU layers that are exact under padding."""

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        weight_dropout: float = 0.0,
        variational: bool = False,
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
        self.dropout = SequenceDropout(dropout, variational)
        self.weight_dropout = weight_dropout

    def run_layer(self, layer: nn.Module, x: torch.Tensor, state: object = None) -> tuple[torch.Tensor, object]:
        """One recurrent layer; while training with weight dropout, its hidden-to-hidden matrix is DropConnected."""
        if not self.training or self.weight_dropout == 0:
            return layer(x, state)
        weights = dict(layer.named_parameters())
        weights["weight_hh_l0"] = F.dropout(weights["weight_hh_l0"], self.weight_dropout, True)
        return functional_call(layer, weights, (x, state))

    def run_direction(
        self, layers: nn.ModuleList, x: torch.Tensor, states: list | None = None
    ) -> tuple[torch.Tensor, list]:
        """One direction's layers in turn (dropout between them), each from its own `states` entry (None: zeros);
        returns the last layer's outputs and each layer's final state (what rnnclf pretrain carries on)."""
        finals = []
        for depth, layer in enumerate(layers):
            if depth:
                x = self.dropout(x)
            x, state = self.run_layer(layer, x, None if states is None else states[depth])
            finals.append(state)
        return x, finals

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """The last layer's outputs (batch, time, hidden), one tensor per direction; positions past a text's
        length hold garbage (mask them). The backward direction's outputs stay in its reading order, reversed
        within each text: masked pooling does not care, and its state after the whole text sits at length - 1.
        """
        if self.backward_layers is None:
            return [self.run_direction(self.forward_layers, x)[0]]
        reverse = reversal_index(lengths, x.shape[1])
        for depth, forward_layer in enumerate(self.forward_layers):
            if depth:
                x = self.dropout(x)
            directions = [self.run_layer(forward_layer, x)[0]]
            directions.append(self.run_layer(self.backward_layers[depth], flip(x, reverse))[0])
            if depth + 1 < len(self.forward_layers):
                x = torch.cat([directions[0], flip(directions[1], reverse)], -1)
        return directions


def reversal_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Index that reverses each row's first `length` positions and leaves its padding in place."""
    positions = torch.arange(width, device=lengths.device)[None, :]
    return torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)


def flip(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


def masked_pool(x: torch.Tensor, mask: torch.Tensor, how: str, attention: AttentionPool | None = None) -> torch.Tensor:
    """Mean, max or attention over the real time steps of x (batch, time, features)."""
    if how == "attention":
        return attention(x, mask)
    mask = mask.unsqueeze(-1)
    if how == "max":
        return x.masked_fill(~mask, torch.finfo(x.dtype).min).max(dim=1).values
    total = x.masked_fill(~mask, 0.0).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1).to(x.dtype)


class AttentionPool(nn.Module):
    """A learned query over the steps of a sequence: each step weighs exp(query . x_t), over the real steps only
    (padding gets weight 0, so it never changes the result). Starts as the mean (query 0)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = (x.float() @ self.query.float()).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).to(x.dtype)
        return (weights.unsqueeze(-1) * x.masked_fill(~mask.unsqueeze(-1), 0.0)).sum(dim=1)


def into_windows(
    x: torch.Tensor, lengths: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Texts x (batch, time, dim) of `lengths` as windows of `window` steps cut from each text's start: the windows
    that hold tokens (windows, window, dim), their lengths, and how many windows each text has (batch,)."""
    count = -(-x.shape[1] // window)
    x = F.pad(x, (0, 0, 0, count * window - x.shape[1])).reshape(x.shape[0] * count, window, x.shape[2])
    starts = torch.arange(count, device=lengths.device) * window
    sizes = (lengths[:, None] - starts[None, :]).clamp(min=0, max=window)  # (batch, count)
    real = sizes.reshape(-1) > 0
    return x[real], sizes.reshape(-1)[real], (sizes > 0).sum(dim=1)


def from_windows(pooled: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each text's window vectors (windows, features) as (batch, most windows, features), and which are real."""
    most = int(counts.max())
    mask = torch.arange(most, device=counts.device)[None, :] < counts[:, None]
    grid = pooled.new_zeros(len(counts), most, pooled.shape[1])
    grid[mask] = pooled
    return grid, mask
