"""rnnclf train with a train.teacher as users run it: in two processes, in tune's trials (the teacher predicting
once for them all), and each mistake in a teacher file one line naming the file and row, exit 2, nothing written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import assert_user_error, rnnclf
from helpers.data import order_task, write_csv

CONFIG = (
    "data: {train: train.csv, test: test.csv}\nembedding: {dim: 16}\n"
    "model: {encoder: gru, hidden_size: 16}\ntrain: {epochs: 2, batch_size: 32, num_threads: 1, device: cpu}\n"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("distill")
    write_csv(folder / "train.csv", order_task(600, seed=51))
    write_csv(folder / "test.csv", order_task(100, seed=52))
    (folder / "config.yaml").write_text(CONFIG)
    assert rnnclf("train", "--config", "config.yaml", "--run-dir", "teacher", cwd=folder).returncode == 0
    return folder


def run(folder: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    environment = os.environ | {"RNNCLF_CACHE": str(cache)}
    command = [sys.executable, "-m", "rnnclf", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, env=environment)


@pytest.mark.slow
def test_a_student_trains_in_two_processes_and_in_tune_trials(folder, tmp_path):
    cache = tmp_path / "cache"
    double = run(
        folder,
        cache,
        "train",
        "--config",
        "config.yaml",
        "--run-dir",
        str(tmp_path / "ddp"),
        "--nproc",
        "2",
        "--set",
        "train.teacher=teacher",
        "--set",
        "train.teacher_augment=1",
    )
    assert double.returncode == 0, double.stderr
    env = json.loads((tmp_path / "ddp" / "env.json").read_text())
    assert env["processes"] == 2 and env["teacher"]["kind"] == "run"
    assert double.stderr.count("teacher: run") == 1  # rank 0 speaks; rank 1 read what it cached
    before = {path: path.stat().st_mtime_ns for path in (cache / "teacher").iterdir()}
    assert len(before) == 1
    (folder / "space.yaml").write_text("train.teacher_weight: {low: 0.2, high: 0.9}\n")
    tuned = run(
        folder,
        cache,
        "tune",
        "--config",
        "config.yaml",
        "--space",
        "space.yaml",
        "--trials",
        "3",
        "--out",
        str(tmp_path / "tune"),
        "--set",
        "train.teacher=teacher",
        "--set",
        "train.teacher_augment=1",
        "--format",
        "json",
    )
    assert tuned.returncode == 0, tuned.stderr
    cached = {path: path.stat().st_mtime_ns for path in (cache / "teacher").iterdir()}
    assert cached == before  # every trial read what the run above cached
    trials = [path for path in (tmp_path / "tune" / "trials").iterdir() if (path / "env.json").exists()]
    assert len(trials) == 3 and all(
        json.loads((t / "env.json").read_text())["teacher"]["kind"] == "run" for t in trials
    )
    weights = {
        json.loads((run_dir / "config.yaml").read_text().split("teacher_weight: ")[1].split()[0])
        for run_dir in (tmp_path / "tune").glob("trials/*")
        if (run_dir / "config.yaml").exists()
    }
    assert len(weights) > 1


@pytest.mark.parametrize(
    "row, fragment",
    [
        (
            '{"text": "x", "probs": {"pos": 0.4, "neg": 0.6}}\n{"text": "y", "probs": {"maybe": 1}}',
            "line 2: label 'maybe'",
        ),
        ('{"text": "x", "probs": {"pos": 1}}\nnot json', "line 2: not a JSON object"),
        ('{"text": "x", "probs": {"pos": 1}}', "no row for the text"),
    ],
)
def test_teacher_file_mistakes_are_one_line_and_write_nothing(folder, tmp_path, row, fragment):
    (tmp_path / "teacher.jsonl").write_text(row + "\n")
    result = run(
        folder,
        tmp_path / "cache",
        "train",
        "--config",
        "config.yaml",
        "--run-dir",
        str(tmp_path / "student"),
        "--set",
        f"train.teacher={tmp_path / 'teacher.jsonl'}",
    )
    assert_user_error(result, str(tmp_path / "teacher.jsonl"), fragment)
    assert not (tmp_path / "student").exists() and not (tmp_path / "cache" / "teacher").exists()
