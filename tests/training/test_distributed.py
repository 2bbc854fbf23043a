"""Distributed training's pieces: shards of the batches, and a mid-epoch state resumed only with as many processes."""

import pytest
import torch

from rnnclf.errors import RnnclfError
from rnnclf.training.checkpoint import Progress, restore_state
from rnnclf.training.distributed import Group, shard


def test_shards_are_disjoint_equal_and_cover_every_batch():
    batches = [[i] for i in range(7)]
    shares = [shard(batches, Group(rank, 3)) for rank in range(3)]
    assert [len(share) for share in shares] == [3, 3, 3]  # lockstep: padded by repeating the first batches
    assert sorted(b[0] for share in shares for b in share) == [0, 0, 1, 1, 2, 3, 4, 5, 6]
    assert shard(batches, Group()) == batches


def test_a_mid_epoch_state_resumes_only_with_as_many_processes():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    rank = {"torch_rng": torch.get_rng_state(), "cuda_rng": None, "sums": [1.0, 1, 2, 3]}
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None,
        "scaler": None,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": None,
        "progress": {**Progress(epoch=2, batch=5, step=40).__dict__},
        "ranks": [rank, rank],
    }
    with pytest.raises(RnnclfError, match="--nproc 2"):
        restore_state(state, model, optimizer, None, scaler, torch.device("cpu"), Group())
    progress = restore_state(state, model, optimizer, None, scaler, torch.device("cpu"), Group(1, 2))
    assert (progress.batch, progress.seen, progress.tokens) == (5, 2, 3)
    state["progress"]["batch"] = 0  # at an epoch's start any number of processes may continue
    restore_state(state, model, optimizer, None, scaler, torch.device("cpu"), Group())
