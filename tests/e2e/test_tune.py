"""rnnclf tune end to end: the search, its outputs, the budget, stopping and continuing, failed trials, two
processes on one study, one-line mistakes. Through the real command on a small order-sensitive task."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml

from rnnclf.config.loading import load_config
from rnnclf.models.embeddings import installed_named_sets

from helpers.data import multi_label_task, order_task, write_csv, write_jsonl
from helpers.mistakes import check_mistake, tune_args

CONFIG = (
    "data: {train: train.csv, test: test.csv}\nembedding: {dim: 16}\n"
    "model: {encoder: gru, hidden_size: 16}\ntrain: {epochs: 3, batch_size: 32, num_threads: 1}\n"
)


SPACE = (
    "train.lr: {low: 0.001, high: 0.02, log: true}\nmodel.hidden_size: [8, 16, 32]\ntrain.epochs: {low: 2, high: 4}\n"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tune")
    write_csv(folder / "train.csv", order_task(1200, seed=1))
    write_csv(folder / "test.csv", order_task(300, seed=2))
    (folder / "tiny.yaml").write_text(CONFIG)
    (folder / "space.yaml").write_text(SPACE)
    return folder


def tune(folder: Path, out: str, *extra: str, config: str = "tiny.yaml") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rnnclf", "tune", "--config", config, "--out", out, "--format", "json", *extra]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600)


def start(folder: Path, out: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "rnnclf", "tune", "--config", "tiny.yaml", "--out", out, *extra]
    return subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(out: Path) -> list[dict]:
    with (out / "trials.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name=out.name, storage=f"sqlite:///{out / 'study.db'}")


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not path.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path} never appeared"


@pytest.mark.slow
def test_search_writes_an_ordinary_run_per_trial_and_a_runnable_best_config(folder):
    result = tune(folder, "search", "--space", "space.yaml", "--trials", "6", "--keep", "2")
    assert result.returncode == 0, result.stderr
    out = folder / "search"
    summary = json.loads(result.stdout)
    trials = rows(out)
    assert [int(r["trial"]) for r in trials] == list(range(6))
    assert trials[0]["note"] == "the config as given"
    assert (trials[0]["train.lr"], trials[0]["model.hidden_size"], trials[0]["train.epochs"]) == ("0.002", "16", "3")
    complete = [r for r in trials if r["state"] == "complete"]
    best = max(complete, key=lambda r: float(r["valid_accuracy"]))
    assert summary["best"]["trial"] == int(best["trial"])
    assert summary["best"]["value"] >= summary["baseline"]["value"]
    for row in trials:  # each trial is an ordinary run directory; the test split is never read by a trial
        run = Path(row["run_dir"])
        assert yaml.safe_load((run / "config.yaml").read_text())["output"]["run_dir"] == str(run.relative_to(folder))
        if row["state"] == "complete":
            assert json.loads((run / "metrics.json").read_text())["test"] is None
        assert not (run / "state").exists()
        epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert len(epochs) == int(row["epochs_run"])
    kept = sorted(int(r["trial"]) for r in trials if (Path(r["run_dir"]) / "model.safetensors").exists())
    ranked = sorted(complete, key=lambda r: float(r["valid_accuracy"]), reverse=True)
    assert len(kept) == 2 and float(ranked[1]["valid_accuracy"]) <= min(
        float(r["valid_accuracy"]) for r in complete if int(r["trial"]) in kept
    )
    # test: once, after the search, on the best trial's weights, and only there
    evaluated = [r["trial"] for r in trials if (Path(r["run_dir"]) / "eval" / "test.json").exists()]
    assert evaluated == [best["trial"]]
    assert (
        summary["test"]["scores"]["accuracy"]
        == json.loads((Path(best["run_dir"]) / "eval" / "test.json").read_text())["accuracy"]
    )
    for name in ("summary.md", "history.png", "importances.png", "space.yaml"):
        assert (out / name).stat().st_size > 0, name
    # best.yaml is the best trial's config, runnable as it is
    best_config = load_config(out / "best.yaml")
    trial_config = yaml.safe_load((Path(best["run_dir"]) / "config.yaml").read_text())
    assert {k: v for k, v in best_config.model_dump(mode="json").items() if k != "output"} == {
        k: v for k, v in trial_config.items() if k != "output"
    }
    trained = subprocess.run(
        [sys.executable, "-m", "rnnclf", "train", "--config", str(out / "best.yaml"), "--format", "json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    assert (folder / "search" / "best" / "metrics.json").exists()
    # report compares the trials like any runs
    finished = [r["run_dir"] for r in complete]
    report = subprocess.run(
        [sys.executable, "-m", "rnnclf", "report", *finished, "--format", "json"], capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr


@pytest.mark.slow
def test_the_same_command_continues_a_finished_study_without_repeating_it(folder):
    out = folder / "again"
    assert tune(folder, "again", "--space", "space.yaml", "--trials", "3").returncode == 0
    result = tune(folder, "again", "--space", "space.yaml", "--trials", "5", "--device", "cpu")  # a worker's own
    assert result.returncode == 0, result.stderr
    assert "continuing the study in sqlite:///" in result.stderr
    assert [int(r["trial"]) for r in rows(out)] == list(range(5))
    assert json.loads(result.stdout)["test"]["trial"] == study(out).best_trial.number
    other = tune(folder, "again", "--space", "space.yaml", "--trials", "6", "--set", "train.batch_size=16")
    assert other.returncode == 2
    assert "this study was started with another config (train.batch_size: 32 then, 16 now)" in other.stderr
    assert len(rows(out)) == 5


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_tune_continues_with_the_same_command(folder, sig):
    name = f"stopped-{sig.name}"
    process = start(folder, name, "--space", "space.yaml", "--trials", "5")
    wait_for(folder / name / "trials" / "trial-0002" / "metrics.jsonl", process)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert process.returncode == 130, stderr
        assert "Continue with the same command" in stderr and "Traceback" not in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    before = [(t.number, t.state, t.value, t.params) for t in study(folder / name).trials[:2]]
    assert [state for _, state, _, _ in before] == [optuna.trial.TrialState.COMPLETE] * 2
    result = tune(folder, name, "--space", "space.yaml", "--trials", "5")
    assert result.returncode == 0, result.stderr
    trials = study(folder / name).trials
    assert [(t.number, t.state, t.value, t.params) for t in trials[:2]] == before  # finished trials are kept
    stopped = trials[2]
    assert stopped.state == optuna.trial.TrialState.FAIL
    assert stopped.user_attrs["failure"] == (
        "interrupted" if sig == signal.SIGINT else f"killed (process {process.pid} ended)"
    )
    reruns = [t for t in trials if t.user_attrs.get("rerun_of") == 2]
    assert len(reruns) == 1 and reruns[0].params == stopped.params
    assert reruns[0].state != optuna.trial.TrialState.FAIL
    counted = [t for t in trials if t.state.is_finished() and t.number != 2]
    assert len(counted) == 5  # --trials counts the trials that ran to their end; the stopped one is run again


@pytest.mark.slow
def test_failed_trial_is_recorded_and_the_search_goes_on(folder):
    """Trial 0 is the config as given, here with a learning rate (and no clipping) that makes the loss NaN."""
    (folder / "nan.yaml").write_text(CONFIG.replace("num_threads: 1}", "num_threads: 1, lr: 3.0e+37, grad_clip: null}"))
    (folder / "lr_space.yaml").write_text("train.lr: {low: 0.001, high: 3.0e+37, log: true}\n")
    result = tune(folder, "failing", "--space", "lr_space.yaml", "--trials", "3", config="nan.yaml")
    assert result.returncode == 0, result.stderr
    trials = rows(folder / "failing")
    assert trials[0]["state"] == "failed"
    assert "training loss became nan" in trials[0]["note"] or "training loss became inf" in trials[0]["note"]
    assert "trial 0 failed: training loss became" in result.stderr
    assert len(trials) == 3 and json.loads(result.stdout)["trials"]["failed"] >= 1


@pytest.mark.slow
def test_impossible_combinations_are_pruned_at_once_and_not_counted(folder):
    """model.dropout needs two layers: with num_layers searched too, some trials draw a combination no config
    allows. They stop before training (pruned, so TPE learns the region is bad) and --trials counts only the rest."""
    (folder / "layers.yaml").write_text("model.num_layers: [1, 2]\nmodel.dropout: {low: 0.1, high: 0.5}\n")
    result = tune(folder, "layers", "--space", "layers.yaml", "--trials", "4")
    assert result.returncode == 0, result.stderr
    trials = rows(folder / "layers")
    assert "trial 0 starts from the config, drawing model.dropout" in result.stderr  # 0.0 lies outside the space
    assert "(the config as given, trial 0" not in (folder / "layers" / "summary.md").read_text()
    impossible = [r for r in trials if r["note"].startswith("an impossible combination")]
    assert impossible, "no trial drew num_layers 1 with dropout; pick another space"
    for row in impossible:
        assert row["state"] == "pruned" and row["model.num_layers"] == "1"
        assert "model.dropout acts between recurrent layers" in row["note"]
        assert not Path(row["run_dir"]).exists()
    assert len(trials) - len(impossible) == 4


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study(folder):
    first = start(folder, "shared", "--space", "space.yaml", "--trials", "8")
    second = start(folder, "shared", "--space", "space.yaml", "--trials", "8")
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, [err for _, err in outputs]
    trials = study(folder / "shared").trials
    finished = [t for t in trials if t.state.is_finished()]
    assert 8 <= len(finished) <= 9  # each stops starting trials at 8; one may be running when the other ends
    pids = {t.user_attrs["pid"] for t in finished}
    assert pids == {first.pid, second.pid}, "both processes ran trials"
    run_dirs = [t.user_attrs["run_dir"] for t in finished]
    assert len(set(run_dirs)) == len(run_dirs) and all(Path(d).is_dir() for d in run_dirs)
    assert sum(t.user_attrs.get("baseline", False) for t in trials) == 1


@pytest.mark.slow
def test_nproc_trains_each_trial_in_several_processes(folder):
    result = tune(folder, "nproc", "--space", "space.yaml", "--trials", "6", "--nproc", "2")
    assert result.returncode == 0, result.stderr
    trials = rows(folder / "nproc")
    assert len(trials) == 6 and json.loads(result.stdout)["test"] is not None
    for row in trials:
        assert json.loads((Path(row["run_dir"]) / "env.json").read_text())["processes"] == 2
        if row["state"] == "pruned":  # both processes stopped the trial at the same epoch
            assert int(row["epochs_run"]) < int(row["train.epochs"])
    assert "Traceback" not in result.stderr and "terminate called" not in result.stderr


def timed_tune(folder: Path, out: str, *extra: str) -> tuple[subprocess.CompletedProcess, list[tuple[float, str]]]:
    """`rnnclf tune` in a subprocess, each line of its log with the seconds since it was started."""
    command = [
        sys.executable,
        "-m",
        "rnnclf",
        "tune",
        "--config",
        "tiny.yaml",
        "--out",
        out,
        "--format",
        "json",
        *extra,
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(300, process.kill)  # a tune that never stops fails here, not never
    watchdog.start()
    lines = [(time.monotonic() - started, line.rstrip("\n")) for line in process.stderr]  # the summary comes last
    stdout = process.stdout.read()
    process.wait(timeout=60)
    watchdog.cancel()
    lines.append((time.monotonic() - started, ""))  # the end of the command
    return subprocess.CompletedProcess(command, process.returncode, stdout, "\n".join(line for _, line in lines)), lines


def longest_epoch(lines: list[tuple[float, str]]) -> float:
    """The longest epoch as the tune's budget watch sees it: from a trial's start (or its previous epoch) to the end
    of an epoch, setup, validation and bookkeeping included; read from when the log lines came."""
    started, longest = {}, 0.0
    for at, line in lines:
        found = re.match(r"trial (\d+)(:| epoch \d+/)", line)
        if found and (found.group(2) != ":" or found.group(1) not in started):  # a trial's first line, or an epoch
            if found.group(1) in started:
                longest = max(longest, at - started[found.group(1)])
            started[found.group(1)] = at
    return longest


@pytest.mark.slow
def test_budget_stops_starting_trials_and_ends_within_one_epoch_of_it(folder):
    # what comes before the tune's clock starts: the interpreter, the command line, Optuna and torch
    started = time.monotonic()
    imports = "import optuna, torch, rnnclf.cli.app, rnnclf.recipes.tune.search"
    subprocess.run([sys.executable, "-c", imports], check=True, timeout=120)
    startup = time.monotonic() - started
    result, lines = timed_tune(folder, "budget", "--budget", "25s")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "search done:" in result.stderr and "budget" in result.stderr.split("search done:")[1].splitlines()[0]
    epochs = [
        json.loads(line)
        for r in rows(folder / "budget")
        if Path(r["run_dir"], "metrics.jsonl").exists()
        for line in Path(r["run_dir"], "metrics.jsonl").read_text().splitlines()
    ]
    longest = max(e["epoch_seconds"] + e["valid_seconds"] for e in epochs)
    assert summary["spent_seconds"] <= 25 + longest + 5  # 5 s: the final outputs (plots, the test split)
    # The same on this test's own clock. A trial starts only when the median finished trial fits in what is left,
    # and stops after an epoch when the next would not fit (search.py, trials.EpochWatch): the search ends within
    # the budget plus one epoch, counted from when the tune's clock starts (after `startup`). 2 s: recording the last
    # trial and rewriting trials.csv before the line "search done" (measured 0.3 s on 2 idle cores).
    search_done = next(at for at, line in lines if line.startswith("search done:"))
    assert search_done <= startup + 25 + longest_epoch(lines) + 2, (search_done, startup, longest_epoch(lines))
    # then the final outputs, the one evaluation of the test split and the plots: 2.6 s of the 29 s measured
    assert lines[-1][0] <= 25 + 15, lines[-1][0]
    assert len(rows(folder / "budget")) >= 2, f"one trial in a 25 s budget ({lines[-1][0]:.0f}s)"
    space = yaml.safe_load((folder / "budget" / "space.yaml").read_text())
    vectors = {"embedding.pretrained"} if installed_named_sets() else set()  # GloVe, with the glove extra
    assert set(space) - vectors == {
        "train.lr",
        "model.hidden_size",
        "embedding.dropout",
        "model.head_dropout",
        "model.encoder",
        "model.pooling",
        "train.batch_size",
        "train.label_smoothing",
        "train.epochs",
    }


@pytest.mark.slow
def test_multi_label_tune_searches_on_micro_f1(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", multi_label_task(600, seed=3))
    (tmp_path / "ml.yaml").write_text(
        "data: {train: train.jsonl, multi_label: true, label_field: labels}\nembedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 16}\ntrain: {epochs: 2, num_threads: 1}\n"
    )
    (tmp_path / "space.yaml").write_text("train.lr: {low: 0.002, high: 0.02, log: true}\n")
    result = tune(tmp_path, "ml-tune", "--space", "space.yaml", "--trials", "2", config="ml.yaml")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["metric"] == "micro_f1" and summary["test"] is None  # no test split here: nothing evaluated
    best = rows(tmp_path / "ml-tune")[summary["best"]["trial"]]
    assert float(best["valid_micro_f1"]) == pytest.approx(summary["best"]["value"], abs=1e-6)
    assert (Path(best["run_dir"]) / "thresholds.json").exists()
    assert load_config(tmp_path / "ml-tune" / "best.yaml").data.multi_label


CASES = {
    "tune unknown key in the space": (
        lambda ws: tune_args(ws, "train.lrr: {low: 0.001, high: 0.01}\n"),
        2,
        "space.yaml: unknown key 'train.lrr' (did you mean 'train.lr'?)",
    ),
    "tune empty range": (
        lambda ws: tune_args(ws, "train.lr: {low: 0.01, high: 0.01}\n"),
        2,
        "space.yaml: train.lr: the range is empty (low 0.01, high 0.01)",
    ),
    "tune inverted range": (
        lambda ws: tune_args(ws, "model.hidden_size: {low: 64, high: 8}\n"),
        2,
        "model.hidden_size: the range is inverted (low 64, high 8); low must be below high",
    ),
    "tune choice that fails the config": (
        lambda ws: tune_args(ws, "model.encoder: [lstm, lsmt]\n"),
        2,
        "space.yaml: model.encoder: the choice 'lsmt' fails the config: model.encoder: Input should be",
    ),
    "tune bound that fails the config": (
        lambda ws: tune_args(ws, "embedding.dropout: {low: 0.1, high: 1.5}\n"),
        2,
        "embedding.dropout: the bound 1.5 fails the config: embedding.dropout: Input should be less than 1",
    ),
    "tune range on a key that is not a number": (
        lambda ws: tune_args(ws, "model.pooling: {low: 1, high: 2}\n"),
        2,
        "model.pooling: this key is not a number; give a list of choices instead of a range",
    ),
    "tune a key that must not be searched": (
        lambda ws: tune_args(ws, "train.seed: [0, 1]\n"),
        2,
        "train.seed cannot be searched: a seed is luck",
    ),
    "tune budget shorter than a trial": (
        lambda ws: tune_args(ws, None, "--budget", "0.2s"),
        2,
        "--budget 0.2s is shorter than one trial of",
    ),
    "tune budget that is not a duration": (
        lambda ws: tune_args(ws, None, "--budget", "soon"),
        2,
        "--budget 'soon': expected a duration such as 90s, 20m, 1h30m",
    ),
    "tune unreachable storage": (
        lambda ws: tune_args(ws, "train.lr: [0.001, 0.01]\n", "--storage", "sqlite:////no/such/folder/study.db"),
        2,
        "--storage sqlite:////no/such/folder/study.db: cannot open the study database",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_matrix(mistakes, case, capsys, monkeypatch):
    check_mistake(mistakes, CASES[case], capsys, monkeypatch)
