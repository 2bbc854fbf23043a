"""`rnnclf train --resume`: a run killed at any moment and resumed ends exactly as the same run uninterrupted (on
CPU), single- and multi-label."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnnclf.errors import RnnclfError
from rnnclf.training.checkpoint import load_state

from helpers.data import digest, multi_label_task, order_task, write_csv, write_jsonl
from helpers.runs import MULTI_LABEL_CONFIG

pytestmark = pytest.mark.slow  # processes started, killed and resumed: tens of seconds each


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("resume")
    write_csv(folder / "train.csv", order_task(3000, seed=5))
    write_csv(folder / "test.csv", order_task(300, seed=6))
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\n"
        "embedding: {dim: 32, dropout: 0.2}\n"
        "model: {encoder: lstm, hidden_size: 64, head_dropout: 0.3}\n"
        "train: {epochs: 3, batch_size: 16, lr: 0.003, scheduler: cosine, warmup_ratio: 0.1, save_every: 10, num_threads: 1}\n"
    )
    result = start(folder, "reference").wait(timeout=600)
    assert result == 0
    return folder


def start(folder: Path, name: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "rnnclf", "train", "--config", "config.yaml", "--run-dir", name, *extra]
    return subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def saved_step(run: Path) -> int:
    try:
        return load_state(run / "state")["progress"]["step"]
    except RnnclfError:
        return 0


def interrupt(folder: Path, name: str, sig: int, after_step: int) -> subprocess.Popen:
    process = start(folder, name)
    deadline = time.time() + 300
    while saved_step(folder / name) < after_step and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(sig)
    process.wait(timeout=120)
    return process


def assert_same_as_reference(folder: Path, name: str) -> None:
    reference, resumed = folder / "reference", folder / name
    for file in ("model.safetensors", "state/state.safetensors"):
        a, b = load_file(reference / file), load_file(resumed / file)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), file
    metrics_a, metrics_b = (json.loads((run / "metrics.json").read_text()) for run in (reference, resumed))
    assert metrics_a["valid"] == metrics_b["valid"] and metrics_a["test"] == metrics_b["test"]
    assert metrics_a["best_epoch"] == metrics_b["best_epoch"]
    calibration = [json.loads((run / "calibration.json").read_text()) for run in (reference, resumed)]
    assert calibration[0] == calibration[1]  # the temperature fitted after the resumed run's last epoch
    lines_a = [json.loads(x) for x in (reference / "metrics.jsonl").read_text().splitlines()]
    lines_b = [json.loads(x) for x in (resumed / "metrics.jsonl").read_text().splitlines()]
    keys = ("epoch", "step", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "lr")
    assert [[line[k] for k in keys] for line in lines_a] == [[line[k] for k in keys] for line in lines_b]


def resume(folder: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnclf", "train", "--resume", name],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_sigkill_then_resume_is_exact(setup):
    process = interrupt(setup, "killed", signal.SIGKILL, after_step=250)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    result = resume(setup, "killed")
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    assert_same_as_reference(setup, "killed")


@pytest.mark.parametrize("delay", [0.0, 0.4])
def test_sigkill_before_the_first_save_then_resume_is_exact(setup, delay):
    """With save_every null the first state is saved after epoch 1: a kill before it leaves a run directory
    without state/, and --resume starts that run again from the beginning with its own config."""
    name = f"early-{delay}"
    process = start(setup, name, "--set", "train.save_every=null")
    deadline = time.time() + 300
    while not (setup / name / "config.yaml").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (setup / name / "state").exists(), "the kill came after the first save"
    result = resume(setup, name)
    assert result.returncode == 0, result.stderr
    assert "from the start" in result.stderr
    assert_same_as_reference(setup, name)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_state_and_exits(setup, sig, code):
    name = f"stopped-{code}"
    process = interrupt(setup, name, sig, after_step=150)
    stderr = process.stderr.read()
    assert process.returncode == code, stderr
    assert f"state saved. Continue with: rnnclf train --resume {name}" in stderr
    assert "Traceback" not in stderr
    result = resume(setup, name)
    assert result.returncode == 0, result.stderr
    assert_same_as_reference(setup, name)


def test_resume_mistakes(setup, tmp_path):
    result = resume(setup, "nowhere")
    assert result.returncode == 2 and "nowhere: run directory not found" in result.stderr
    (setup / "empty").mkdir()
    result = resume(setup, "empty")
    assert result.returncode == 2 and "no saved training state" in result.stderr
    combined = subprocess.run(
        [sys.executable, "-m", "rnnclf", "train", "--resume", "reference", "--config", "config.yaml"],
        cwd=setup,
        capture_output=True,
        text=True,
    )
    assert combined.returncode == 2 and "do not combine" in combined.stderr


def test_resuming_a_finished_run_says_it_is_complete_and_exits_0(setup):
    """A job on a preemptible machine reruns the same resume command after the run has finished: exit 0, one line,
    nothing of the run touched."""
    run = setup / "reference"
    before = digest(run)
    command = [sys.executable, "-m", "rnnclf", "train", "--resume", str(run)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the run is complete" in lines[0] and "nothing to resume" in lines[0], lines
    assert result.stdout == ""
    assert digest(run) == before


def test_a_killed_multi_label_run_resumes_exactly(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", multi_label_task(3000, seed=8))
    write_jsonl(tmp_path / "test.jsonl", multi_label_task(300, seed=9))
    (tmp_path / "config.yaml").write_text(
        MULTI_LABEL_CONFIG.replace("epochs: 5, batch_size: 32", "epochs: 2, batch_size: 16, save_every: 10")
    )
    assert start(tmp_path, "reference").wait(timeout=600) == 0
    process = interrupt(tmp_path, "killed", signal.SIGKILL, after_step=120)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    result = resume(tmp_path, "killed")
    assert result.returncode == 0, result.stderr
    assert_same_as_reference(tmp_path, "killed")
    assert (tmp_path / "killed" / "thresholds.json").read_text() == (
        tmp_path / "reference" / "thresholds.json"
    ).read_text()
