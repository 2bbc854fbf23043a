"""The workspaces of the end-to-end tests that several commands' tests share: a run of the order task trained with
`rnnclf train` as a user would, and the bad-input matrix's files and runs (helpers/mistakes.py)."""

import json
from pathlib import Path

import pytest

from helpers.cli import rnnclf
from helpers.data import order_task, write_csv
from helpers.mistakes import make_workspace


@pytest.fixture(scope="session")
def order_workspace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    write_csv(folder / "train.csv", order_task(800, seed=3))
    write_csv(folder / "test.csv", order_task(200, seed=4))
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\n"
        "embedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 24}\n"
        "train: {epochs: 6, batch_size: 32, lr: 0.01}\n"
    )
    return folder


@pytest.fixture(scope="session")
def order_run(order_workspace) -> Path:
    """`rnnclf train --config config.yaml` in order_workspace: the run runs/config."""
    result = rnnclf("train", "--config", "config.yaml", "--set", "train.seed=1", cwd=order_workspace)
    assert result.returncode == 0, result.stderr
    assert "device: cpu" in result.stderr and "test (best epoch" in result.stderr
    summary = json.loads(result.stdout)  # piped: the summary is JSON
    assert summary["test"]["accuracy"] > 0.5 and summary["best_epoch"] >= 1
    return order_workspace / "runs" / "config"


@pytest.fixture(scope="session")
def mistakes(tmp_path_factory) -> Path:
    """The bad-input matrix's workspace: files with every kind of mistake, and the runs RUN, ml_run and lm."""
    return make_workspace(tmp_path_factory.mktemp("bad"))
