"""Fixtures any test folder may use: generated data files, and the trained runs that tests in several folders start
from. Each run is trained once per session, when a test first asks for it (seconds each)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

pytest.register_assert_rewrite("helpers")  # helpers' asserts explain themselves like the tests' own

from rnnclf.config.loading import load_config  # noqa: E402
from rnnclf.inference.predictor import Predictor  # noqa: E402
from rnnclf.recipes.classify import train  # noqa: E402

from helpers.cli import rnnclf  # noqa: E402
from helpers.data import multi_label_task, order_task, sentences, sha256, write_csv, write_jsonl  # noqa: E402
from helpers.runs import (  # noqa: E402
    CALIBRATION_CONFIG,
    CLASSIFIER_FROM_LM_CONFIG,
    ENSEMBLE_CONFIG,
    LM_CONFIG,
    MULTI_LABEL_CONFIG,
    train_run,
)


@pytest.fixture
def order_files(tmp_path: Path) -> dict[str, Path]:
    return {
        "train": write_csv(tmp_path / "train.csv", order_task(1200, seed=1)),
        "test": write_csv(tmp_path / "test.csv", order_task(300, seed=2)),
    }


@pytest.fixture
def planted(tmp_path: Path) -> dict:
    """train / test CSVs with known problems; returns the paths and the lines where each problem was put."""
    rng = random.Random(7)
    train = [(text, "pos" if i % 2 else "neg") for i, text in enumerate(sentences(rng, 60))]
    test = [(text, "pos" if i % 2 else "neg") for i, text in enumerate(sentences(rng, 20))]
    train[3] = ("   ", "pos")  # empty (line 5: the header is line 1)
    train[10] = ("", "neg")
    train[20], train[21] = train[30], train[30]  # line 32 twice more (lines 22, 23)
    for i in range(4):  # test copies of train texts, with other case and spacing
        test[i] = ("  " + train[40 + i][0].upper().replace(" ", "   "), train[40 + i][1])
    test[4] = (train[50][0], "pos" if train[50][1] == "neg" else "neg")  # same text, other label
    tokens = train[55][0].split()
    tokens[8] = "changed"  # one word of 16: 13 of 17 bigrams shared, Jaccard 0.765
    test[5] = (" ".join(tokens), train[55][1])
    return {
        "train": write_csv(tmp_path / "train.csv", train),
        "test": write_csv(tmp_path / "test.csv", test),
        "near_pair": (train[55][0], test[5][0]),
    }


# the shared runs


@pytest.fixture(scope="session")
def multi_label_workspace(tmp_path_factory) -> Path:
    """FOLDER/run: a multi-label GRU on the topic task (train.jsonl, test.jsonl), trained with `rnnclf train`."""
    folder = tmp_path_factory.mktemp("multilabel")
    write_jsonl(folder / "train.jsonl", multi_label_task(1500, seed=1))
    write_jsonl(folder / "test.jsonl", multi_label_task(400, seed=2))
    (folder / "ml.yaml").write_text(MULTI_LABEL_CONFIG)
    result = rnnclf("train", "--config", "ml.yaml", "--run-dir", "run", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="session")
def calibration_workspace(tmp_path_factory) -> Path:
    """FOLDER/run (calibrated) and FOLDER/raw (train.calibration none), on the order task with a fifth of the
    training labels flipped."""
    folder = tmp_path_factory.mktemp("calibration")
    noisy = [
        (text, label if i % 5 else ("neg" if label == "pos" else "pos"))
        for i, (text, label) in enumerate(order_task(900, 5))
    ]
    write_csv(folder / "train.csv", noisy)  # a fifth of the labels flipped: confident models are wrong often
    write_csv(folder / "test.csv", order_task(300, 6))
    (folder / "single.yaml").write_text(CALIBRATION_CONFIG)
    for name, extra in (("run", []), ("raw", ["--set", "train.calibration=none"])):
        result = rnnclf("train", "--config", "single.yaml", "--run-dir", name, *extra, cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="session")
def ensemble_workspace(tmp_path_factory) -> Path:
    """FOLDER/m0 and FOLDER/m1: two small GRUs on the order task (seeds 0 and 1, one shared validation split),
    trained in-process; FOLDER/config.yaml is their config. Tests that change a member copy it first."""
    folder = tmp_path_factory.mktemp("ensemble")
    write_csv(folder / "train.csv", order_task(800, seed=21))
    write_csv(folder / "test.csv", order_task(200, seed=22))
    (folder / "config.yaml").write_text(ENSEMBLE_CONFIG)
    for seed in (0, 1):
        train_run(folder, f"m{seed}", f"train.seed={seed}")
    return folder


@pytest.fixture(scope="session")
def int8_run(tmp_path_factory) -> Path:
    """An LSTM on the order task, trained in-process; int8 not checked yet."""
    folder = tmp_path_factory.mktemp("int8")
    write_csv(folder / "train.csv", order_task(1500, seed=11))
    write_csv(folder / "test.csv", order_task(300, seed=12))
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\nembedding: {dim: 16}\n"
        "model: {encoder: lstm, hidden_size: 24}\ntrain: {epochs: 4, batch_size: 32, lr: 0.01}\n"
    )
    train(load_config(folder / "config.yaml", [f"output.run_dir={folder / 'run'}"]), log=lambda line: None)
    return folder / "run"


@pytest.fixture(scope="session")
def int8_checked(int8_run) -> subprocess.CompletedProcess:
    """`rnnclf export RUN --quantize int8` on int8_run: the check that allows --int8 (it writes RUN/int8.json)."""
    return rnnclf("export", str(int8_run), "--quantize", "int8")


@pytest.fixture(scope="session")
def explain_run(tmp_path_factory) -> Path:
    """A bidirectional GRU that reads the order task perfectly (a few seconds); its test split is
    order_task(300, seed=2)."""
    folder = tmp_path_factory.mktemp("explain")
    train_csv = write_csv(folder / "train.csv", order_task(1200, seed=1))
    test_csv = write_csv(folder / "test.csv", order_task(300, seed=2))
    (folder / "config.yaml").write_text(
        f"data: {{train: {train_csv}, test: {test_csv}, valid_fraction: 0.15}}\n"
        "embedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 32, pooling: last, head_dropout: 0.0}\n"
        "train: {epochs: 10, batch_size: 32, lr: 0.01, seed: 0, early_stopping: 3}\n"
        f"output: {{run_dir: {folder / 'run'}}}\n"
    )
    summary = train(load_config(folder / "config.yaml"), log=lambda message: None)
    assert summary["test"]["accuracy"] >= 0.95
    return folder / "run"


@pytest.fixture(scope="session")
def explain_predictor(explain_run) -> Predictor:
    return Predictor.load(explain_run, "cpu")


@pytest.fixture(scope="session")
def export_workspace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    write_csv(folder / "train.csv", order_task(600, seed=5))
    write_csv(folder / "test.csv", order_task(100, seed=6))
    (folder / "texts.txt").write_text("\n".join(text for text, _ in order_task(60, seed=7)) + "\n")
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\n"
        "embedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 24}\n"
        "train: {epochs: 3, batch_size: 32, lr: 0.01, seed: 1}\n"
    )
    return folder


@pytest.fixture(scope="session")
def export_run(export_workspace) -> Path:
    """A GRU on the order task trained with `rnnclf train`, to export."""
    result = rnnclf("train", "--config", "config.yaml", cwd=export_workspace)
    assert result.returncode == 0, result.stderr
    return export_workspace / "runs" / "config"


@pytest.fixture(scope="session")
def plot_workspace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("plots")
    write_csv(folder / "train.csv", order_task(1000, seed=7))
    write_csv(folder / "test.csv", order_task(200, seed=8))
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\n"
        "embedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 24}\n"
        "train: {epochs: 3, batch_size: 32, lr: 0.01, num_threads: 1}\n"
        "output: {tensorboard: true}\n"
    )
    return folder


@pytest.fixture(scope="session")
def plot_runs(plot_workspace) -> dict:
    """Run a (hidden 24, TensorBoard on) and run b (hidden 32, 2 epochs); curves.png as seen after each epoch."""
    seen = []

    def log(line: str) -> None:
        if line.startswith("epoch "):
            curves = plot_workspace / "a" / "curves.png"
            seen.append(sha256(curves) if curves.exists() else None)

    a = train_run(plot_workspace, "a", log=log)
    b = train_run(plot_workspace, "b", "model.hidden_size=32", "train.epochs=2", "output.tensorboard=false")
    return {"a": a, "b": b, "curves_per_epoch": seen}


@pytest.fixture(scope="session")
def lm_folder(tmp_path_factory) -> Path:
    """FOLDER/lm: a language model on the order task's texts (`rnnclf pretrain`), and FOLDER/classifier.yaml, a
    classifier that starts from it."""
    folder = tmp_path_factory.mktemp("pretrain")
    write_csv(folder / "train.csv", order_task(800, seed=11))
    write_csv(folder / "test.csv", order_task(200, seed=12))
    (folder / "lm.yaml").write_text(LM_CONFIG)
    (folder / "classifier.yaml").write_text(CLASSIFIER_FROM_LM_CONFIG)
    result = rnnclf("pretrain", "--config", "lm.yaml", "--run-dir", "lm", cwd=folder, timeout=600)
    assert result.returncode == 0, result.stderr
    return folder
