"""The language model: truncated backpropagation in windows reads each text as one pass does."""

from __future__ import annotations

import pytest
import torch

from rnnclf.models.language_model import LanguageModel, detach, direction_streams, windows

SMALL = {"embedding_dim": 16, "encoder": "gru", "hidden_size": 24, "bidirectional": True}


def test_windows_with_the_state_carried_equal_one_pass_over_the_whole_text():
    """Truncated backpropagation cuts gradients, not the forward pass: the loss in windows of 3 tokens with the
    state carried is the loss of reading each text at once."""
    torch.manual_seed(0)
    model = LanguageModel(40, **SMALL).eval()
    ids = torch.randint(2, 40, (4, 17))
    lengths = torch.tensor([17, 12, 5, 2])
    ids[torch.arange(17)[None, :] >= lengths[:, None]] = 0
    streams = direction_streams(ids, lengths, True)

    @torch.no_grad()
    def loss(bptt: int) -> float:
        total, count, states = 0.0, 0, [None, None]
        for inputs, targets in windows(streams, bptt):
            part, n, states = model(inputs, targets, states)
            states = detach(states)
            total, count = total + float(part), count + int(n)
        assert count == 2 * int((lengths - 1).sum())  # every next token once per direction, padding never
        return total / count

    assert loss(3) == pytest.approx(loss(100), rel=1e-5)
