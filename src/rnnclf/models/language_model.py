"""LanguageModel: the classifier's embedding and recurrent layers, trained to predict the next token.

The forward layers read each text left to right; a bidirectional encoder's backward layers read it right to
left (each text reversed within its own length). Each direction has its own output layer over the vocabulary:
a full softmax, or torch's AdaptiveLogSoftmaxWithLoss (exact, and much cheaper for large vocabularies: frequent
words in a small head, rare ones in smaller clusters). Parameter names match RNNClassifier's (`embedding.*`,
`encoder.*`), so a classifier takes them as they are (rnnclf.runs.language_model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnclf.config.schema import Config
from rnnclf.data.tokenizer import PAD_ID
from rnnclf.models.layers import Recurrent, SequenceDropout, WordEmbedding, encoder_arguments, flip, reversal_index

ADAPTIVE_ABOVE = 10_000  # pretrain.softmax auto: an adaptive softmax for vocabularies larger than this
CUTOFFS = (2_000, 10_000, 50_000)  # head and cluster sizes, in frequency order


def language_model_arguments(config: Config) -> dict[str, Any]:
    """LanguageModel's keyword arguments from a config: the classifier's embedding and encoder, and the output layer
    (pretrain.softmax); no pooling, since a language model predicts at every position."""
    return {"softmax": config.pretrain.softmax, **encoder_arguments(config)}


class LanguageModel(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        *,
        softmax: str = "auto",
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
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embedding = WordEmbedding(vocab_size, embedding_dim, word_dropout)
        self.embedding.weight.requires_grad_(trainable_embedding)
        self.embedding_dropout = SequenceDropout(embedding_dropout, variational)
        self.encoder = Recurrent(
            encoder, embedding_dim, hidden_size, num_layers, bidirectional, dropout, weight_dropout, variational
        )
        self.output_dropout = SequenceDropout(head_dropout, variational)
        adaptive = softmax == "adaptive" or (softmax == "auto" and vocab_size > ADAPTIVE_ABOVE)
        # a small vocabulary asked to be adaptive gets one cluster of its rarer half
        cutoffs = [c for c in CUTOFFS if c < vocab_size - 1] or ([vocab_size // 2] if vocab_size > 3 else [])
        directions = 2 if bidirectional else 1
        self.softmax = nn.ModuleList(
            nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, cutoffs, div_value=4.0)
            if adaptive and cutoffs
            else nn.Linear(hidden_size, vocab_size)
            for _ in range(directions)
        )
        # the adaptive softmax wants frequent tokens first: rank[id] is a token's place by training frequency
        self.register_buffer("rank", torch.arange(vocab_size))

    def set_frequencies(self, counts: np.ndarray) -> None:
        order = np.argsort(-counts, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.rank.copy_(torch.from_numpy(rank))

    def directions(self) -> list[nn.ModuleList]:
        backward = self.encoder.backward_layers
        return [self.encoder.forward_layers] + ([backward] if backward is not None else [])

    def forward(
        self, inputs: list[torch.Tensor], targets: list[torch.Tensor], states: list
    ) -> tuple[torch.Tensor, torch.Tensor, list]:
        """One window of each direction: inputs and next-token targets (batch, time), PAD where there is none.
        Returns the summed negative log-likelihood, the number of targets, and each direction's final states."""
        total = torch.zeros((), device=inputs[0].device)
        finals = []
        for layers, softmax, ids, target, state in zip(
            self.directions(), self.softmax, inputs, targets, states, strict=True
        ):
            x = self.embedding_dropout(self.embedding(ids))
            outputs, final = self.encoder.run_direction(layers, x, state)
            finals.append(final)
            keep = target != PAD_ID
            hidden = self.output_dropout(outputs)[keep].float()
            with torch.autocast(hidden.device.type, enabled=False):  # the softmax in full precision
                total = total + token_loss(softmax, hidden, self.rank[target[keep]])
        count = (targets[0] != PAD_ID).sum() * len(targets)
        return total, count, finals


def token_loss(softmax: nn.Module, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood of `target` (frequency ranks) under either kind of output layer."""
    if isinstance(softmax, nn.AdaptiveLogSoftmaxWithLoss):
        return -softmax(hidden, target).output.sum()
    return F.cross_entropy(softmax(hidden), target, reduction="sum")


def direction_streams(ids: torch.Tensor, lengths: torch.Tensor, bidirectional: bool) -> list[torch.Tensor]:
    """Each direction's token stream of a padded batch: the texts as they are, and reversed within their lengths."""
    streams = [ids]
    if bidirectional:
        streams.append(flip(ids[:, :, None], reversal_index(lengths, ids.shape[1]))[:, :, 0])
    return streams


def windows(streams: list[torch.Tensor], bptt: int) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Per window of `bptt` positions, each direction's inputs and next-token targets (what LanguageModel.forward
    takes). Padding (PAD after each text) is never a target, since a PAD input is only ever followed by PAD."""
    width = streams[0].shape[1] - 1  # the last token has no next one
    bounds = [(i, min(i + bptt, width)) for i in range(0, width, bptt)]
    return [([s[:, i:end] for s in streams], [s[:, i + 1 : end + 1] for s in streams]) for i, end in bounds]


def detach(states: list) -> list:
    """States carried into the next window, cut from this window's graph (truncated backpropagation)."""
    if isinstance(states, torch.Tensor):
        return states.detach()
    if isinstance(states, (list, tuple)):
        return type(states)(detach(s) for s in states)
    return states
