"""Learning-rate schedules, step by step."""

import numpy as np
import pytest
import torch


def test_slanted_triangular_schedule():
    from rnnclf.config.schema import TrainConfig
    from rnnclf.training.optim import build_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, TrainConfig(scheduler="slanted", warmup_ratio=0.1), 100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = int(np.argmax(rates))
    assert peak == 9 and rates[peak] == pytest.approx(1.0)
    assert rates[0] == pytest.approx((1 + 0.1 * 31) / 32)  # rises from about lr / 32
    assert rates[-1] > optimizer.param_groups[0]["lr"] == pytest.approx(1 / 32)  # and falls back to it
