"""TensorBoard scalars: every step and epoch once, also across a resume; a missing tensorboard stops before the run
exists."""

import json
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rnnclf.errors import RnnclfError
from rnnclf.recipes.classify import resume
from rnnclf.training.session import TrainingStopped

from helpers.runs import train_run

SCALARS = {
    "train/loss",
    "train/lr",
    "train/epoch_loss",
    "valid/loss",
    "valid/objective",
    "valid/accuracy",
    "valid/macro_f1",
    "speed/tokens_per_s",
}


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_logs_steps_and_epochs(plot_runs):
    logged = scalars(plot_runs["a"])
    assert SCALARS <= set(logged)
    epochs = [json.loads(line) for line in (plot_runs["a"] / "metrics.jsonl").read_text().splitlines()]
    assert [step for step, _ in logged["valid/accuracy"]] == [e["step"] for e in epochs]
    np.testing.assert_allclose(
        [v for _, v in logged["valid/macro_f1"]], [e["valid_macro_f1"] for e in epochs], rtol=1e-6
    )
    assert [step for step, _ in logged["train/loss"]] == list(range(1, epochs[-1]["step"] + 1))
    assert not (plot_runs["b"] / "tensorboard").exists(), "off by default"


def test_tensorboard_resume_does_not_log_steps_twice(plot_workspace):
    """Stop in epoch 3, then roll the state back to an older save: the steps trained again replace their events."""
    run = plot_workspace / "resumed"
    backup = plot_workspace / "backup.safetensors"

    def log(line: str) -> None:
        if line.startswith("epoch 2/3"):
            shutil.copy(run / "state" / "state.safetensors", backup)  # saved at step 40, inside epoch 2
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(TrainingStopped):
        train_run(plot_workspace, "resumed", "train.save_every=20", log=log)
    before = scalars(run)
    shutil.copy(backup, run / "state" / "state.safetensors")
    resume(run, command=["test"], log=lambda line: None)

    logged = scalars(run)
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [step for step, _ in logged["train/loss"]] == list(range(1, epochs[-1]["step"] + 1))
    assert [step for step, _ in logged["valid/loss"]] == [e["step"] for e in epochs]
    assert len(epochs) == 3 and before["train/loss"][-1][0] > 40, "the first session went past the saved step"
    assert logged["train/loss"][:40] == before["train/loss"][:40], "steps before the saved state are kept"
    assert (run / "curves.png").exists()


def test_missing_tensorboard_fails_before_the_run_exists(plot_workspace, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(RnnclfError, match=r"output.tensorboard .* pip install 'rnnclf\[tensorboard\]'"):
        train_run(plot_workspace, "no_board")
    assert not (plot_workspace / "no_board").exists()
