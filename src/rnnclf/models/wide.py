"""The wide head: a linear layer over a text's n-gram features (data/ngrams.py), its scores added to the recurrent
head's. An embedding bag: each text's score is the sum of its n-grams' rows of the weight, weighted by their TF-IDF
values, plus a bias; `scale` weighs it in the sum with the recurrent head (chosen on validation, 1 when the wide head
is the whole model)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WideHead(nn.Module):
    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(features, classes))
        self.bias = nn.Parameter(torch.zeros(classes))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Each text's scores (batch, classes), unscaled; texts are rows `offsets` apart in `indices` / `values`."""
        return F.embedding_bag(indices, self.weight, offsets, mode="sum", per_sample_weights=values) + self.bias
