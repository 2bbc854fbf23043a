"""`rnnclf train --nproc 2`: distributed data-parallel training in 2 CPU processes (gloo), started by torchrun."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers.cli import rnnclf
from helpers.data import order_task, write_csv
from helpers.runs import all_positive_micro_f1

pytestmark = pytest.mark.slow  # processes started, killed and resumed: tens of seconds each

CONFIG = (
    "data: {train: train.csv, test: test.csv}\n"
    "embedding: {dim: 16}\n"
    "model: {encoder: gru, hidden_size: 24}\n"
    "train: {epochs: 4, batch_size: 32, lr: 0.01, seed: 3, num_threads: 1, device: cpu}\n"  # gloo, on any machine
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ddp")
    write_csv(folder / "train.csv", order_task(1500, seed=11))
    write_csv(folder / "test.csv", order_task(400, seed=12))
    (folder / "config.yaml").write_text(CONFIG)
    return folder


def test_two_processes_train_one_run_as_well_as_one_process(workspace):
    single = rnnclf("train", "--config", "config.yaml", "--run-dir", "runs/single", cwd=workspace)
    assert single.returncode == 0, single.stderr
    double = rnnclf("train", "--config", "config.yaml", "--run-dir", "runs/double", "--nproc", "2", cwd=workspace)
    assert double.returncode == 0, double.stderr
    assert "2 processes (gloo)" in double.stderr and "Traceback" not in double.stderr
    assert double.stderr.count("test (best epoch") == 1  # rank 0 speaks; the summary is one JSON line when piped
    assert len(double.stdout.splitlines()) == 1 and json.loads(double.stdout)["test"]["accuracy"] > 0
    assert sorted(p.name for p in (workspace / "runs").iterdir()) == ["double", "single"]

    run = workspace / "runs" / "double"
    assert json.loads((run / "env.json").read_text())["processes"] == 2
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    # each process takes every other batch: one optimizer step per pair of batches
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    one_step_per_batch = [json.loads(line)["step"] for line in (workspace / "runs/single/metrics.jsonl").open()]
    batches_per_epoch = one_step_per_batch[0]
    assert steps == [epoch * -(-batches_per_epoch // 2) for epoch in (1, 2, 3, 4)]
    accuracy = {
        name: json.loads((workspace / "runs" / name / "metrics.json").read_text())["test"]["accuracy"]
        for name in ("single", "double")
    }
    assert accuracy["single"] > 0.9
    assert abs(accuracy["double"] - accuracy["single"]) < 0.05, accuracy

    predicted = rnnclf("predict", str(run), "the movie was not good", "--format", "json", cwd=workspace)
    assert predicted.returncode == 0 and json.loads(predicted.stdout)["label"] in {"pos", "neg"}


def rank_pid(rank: int, launcher: int) -> int | None:
    """The pid of torchrun's worker with this RANK (its environment says so)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == launcher:
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and any(v.startswith(b"TORCHELASTIC_RUN_ID=") for v in environ):
            return int(entry)
    return None


def test_a_dead_rank_stops_the_others_and_the_run_resumes_exactly(workspace):
    args = ["--config", "config.yaml", "--nproc", "2", "--set", "train.epochs=12"]
    reference = rnnclf("train", *args, "--run-dir", "runs/whole", cwd=workspace)
    assert reference.returncode == 0, reference.stderr

    process = subprocess.Popen(
        [sys.executable, "-m", "rnnclf", "train", *args, "--run-dir", "runs/killed"],
        cwd=workspace,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = workspace / "runs" / "killed"
    deadline = time.time() + 120
    while not (run / "state" / "state.safetensors").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    victim = rank_pid(1, process.pid)
    assert victim is not None and process.poll() is None, "training ended before a rank could be killed"
    os.kill(victim, signal.SIGKILL)
    started = time.time()
    _, stderr = process.communicate(timeout=120)  # bounded: the survivors must not hang
    assert time.time() - started < 90
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "training process rank 1 failed first (killed by SIGKILL)" in stderr
    # the launcher says how to continue, whether or not rank 0 lived long enough to say it too
    assert f"continue with: rnnclf train --resume {Path('runs/killed')} --nproc 2" in stderr.splitlines()[-1]

    resumed = rnnclf("train", "--resume", str(run), "--nproc", "2", cwd=workspace)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    whole = workspace / "runs" / "whole"
    for name in ("model.safetensors", "state/state.safetensors"):
        a, b = load_file(whole / name), load_file(run / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[key], b[key]) for key in a), name
    assert json.loads((whole / "calibration.json").read_text()) == json.loads((run / "calibration.json").read_text())
    strip = ("tokens_per_s", "epoch_seconds", "valid_seconds")
    lines = [
        [{k: v for k, v in json.loads(line).items() if k not in strip} for line in (r / "metrics.jsonl").open()]
        for r in (whole, run)
    ]
    assert lines[0] == lines[1]


def test_nproc_mistakes_are_one_line(workspace):
    (workspace / "bad.yaml").write_text(CONFIG.replace("epochs: 4", "epochz: 4"))
    result = rnnclf("train", "--config", "bad.yaml", "--nproc", "2", cwd=workspace)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "epochz" in result.stderr
    # found after the processes started (rank 0 reads the data first): still one line, and exit code 2
    write_csv(workspace / "unseen.csv", [("the film was good", "pos"), ("a new label", "meh")])
    (workspace / "late.yaml").write_text(CONFIG.replace("test: test.csv", "test: unseen.csv"))
    late = rnnclf("train", "--config", "late.yaml", "--nproc", "2", "--run-dir", "runs/late", cwd=workspace)
    assert late.returncode == 2, late.stderr
    assert late.stderr.strip().splitlines() == [late.stderr.strip()] and "'meh'" in late.stderr, late.stderr
    assert not (workspace / "runs" / "late").exists()
    (workspace / "runs" / "taken").mkdir(parents=True, exist_ok=True)
    (workspace / "runs" / "taken" / "model.safetensors").write_text("a user's earlier model")
    taken = rnnclf("train", "--config", "config.yaml", "--nproc", "2", "--run-dir", "runs/taken", cwd=workspace)
    assert taken.returncode == 2 and len(taken.stderr.strip().splitlines()) == 1, taken.stderr
    assert "runs/taken" in taken.stderr


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_all_processes_with_their_state_saved(workspace, how):
    run = workspace / "runs" / f"stopped-{how}"
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnclf", "train", "--config", "config.yaml", "--nproc", "2", "--run-dir", str(run)]
        + ["--set", "train.epochs=40"],
        cwd=workspace,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
    )
    deadline = time.time() + 120
    while not (run / "state" / "state.safetensors").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be stopped"
    if how == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches torchrun and every process
    else:
        os.kill(process.pid, signal.SIGTERM)  # a scheduler stops the launcher; torchrun passes it on
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == (130 if how == "ctrl-c" else 143), stderr
    assert "Traceback" not in stderr and "death signal" not in stderr
    stopped = [line for line in stderr.splitlines() if "state saved" in line]
    assert len(stopped) == 1 and f"rnnclf train --resume {run} --nproc 2" in stopped[0], stderr
    resumed = rnnclf("train", "--resume", str(run), "--nproc", "2", cwd=workspace)
    assert resumed.returncode == 0, resumed.stderr
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 41))


def test_two_processes_train_a_multi_label_run(multi_label_workspace, tmp_path):
    result = rnnclf(
        "train",
        "--config",
        "ml.yaml",
        "--run-dir",
        str(tmp_path / "ddp"),
        "--nproc",
        "2",
        "--set",
        "train.epochs=2",
        cwd=multi_label_workspace,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["multi_label"] and metrics["test"]["micro_f1"] > 0.5
    # far above every label for every text (0.50 here; the two processes reach 0.96, as one process does)
    baseline = all_positive_micro_f1(tmp_path / "ddp", "test")
    assert metrics["test"]["micro_f1"] > baseline + 0.3, (metrics["test"]["micro_f1"], baseline)
    assert (tmp_path / "ddp" / "thresholds.json").exists()


def test_two_processes_train_a_run_with_a_wide_head_and_windows(workspace):
    """Every rank fits the same wide head; the recurrent head reads windows; rank 0 writes the run."""
    args = ["--set", "model.wide=true", "--set", "model.chunk=4", "--set", "model.pooling=attention"]
    done = rnnclf("train", "--config", "config.yaml", "--run-dir", "runs/wide", "--nproc", "2", *args, cwd=workspace)
    assert done.returncode == 0, done.stderr
    run = workspace / "runs" / "wide"
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["test"]["accuracy"] > 0.8 and summary["linear_baseline"]["from"] == "the run's wide head"
    weights = load_file(run / "model.safetensors")
    assert "wide.weight" in weights and "attention.0.query" in weights and (run / "wide_features.safetensors").exists()
    assert all("wide_scale" in json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())
