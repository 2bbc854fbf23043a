"""Looking at runs: curves.png, the confusion matrix PNG, `rnnclf report`, and TensorBoard scalars."""

import hashlib
import json
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import order_task, write_csv
from matplotlib.image import imread
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_cli import rnnclf, run_light

from rnnclf.config.loading import load_config
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.metrics import classification_report
from rnnclf.inference.evaluate import evaluate_run
from rnnclf.recipes.classify import resume, train
from rnnclf.runs.compare import compare_runs
from rnnclf.training.session import TrainingStopped
from rnnclf.views.plots import confusion_figure, save_evaluation_figures

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


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
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


def train_run(workspace: Path, name: str, *overrides: str, log=None) -> Path:
    run = workspace / name
    config = load_config(workspace / "config.yaml", [f"output.run_dir={run}", *overrides])
    train(config, command=["test"], log=log or (lambda line: None))
    return run


def png_size(path: Path) -> tuple[int, int]:
    """(height, width) of a PNG that matplotlib can read back."""
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return image.shape[:2]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def runs(workspace) -> dict[str, Path]:
    """Run a (hidden 24, TensorBoard on) and run b (hidden 32, 2 epochs); curves.png as seen after each epoch."""
    seen = []

    def log(line: str) -> None:
        if line.startswith("epoch "):
            curves = workspace / "a" / "curves.png"
            seen.append(sha(curves) if curves.exists() else None)

    a = train_run(workspace, "a", log=log)
    b = train_run(workspace, "b", "model.hidden_size=32", "train.epochs=2", "output.tensorboard=false")
    return {"a": a, "b": b, "curves_per_epoch": seen}


def test_curves_are_redrawn_after_every_epoch(runs):
    seen = runs["curves_per_epoch"]
    assert len(seen) == 3 and None not in seen
    assert len(set(seen)) == 3, "curves.png changes with each epoch"
    assert seen[-1] == sha(runs["a"] / "curves.png")
    height, width = png_size(runs["a"] / "curves.png")
    assert width > height > 200


def evaluate_and_draw(run, split, log=lambda line: None):
    """What `rnnclf eval` does: the evaluation, then its pictures."""
    evaluation, written = evaluate_run(run, split=split, device="cpu", log=log)
    save_evaluation_figures(evaluation, written, log)
    return evaluation


def test_eval_writes_a_confusion_png_per_split(runs):
    valid = evaluate_and_draw(runs["a"], split="valid")
    test = evaluate_and_draw(runs["a"], split="test")
    folder = runs["a"] / "eval"
    assert valid["support"] != test["support"]
    assert (folder / "valid.json").exists() and (folder / "test.json").exists()
    for name in ("valid_confusion_matrix.png", "test_confusion_matrix.png"):
        height, width = png_size(folder / name)
        assert height > 200 and width > 200
    assert sha(folder / "valid_confusion_matrix.png") != sha(folder / "test_confusion_matrix.png")


def test_confusion_figure_is_row_normalised_with_label_names():
    rng = np.random.default_rng(0)
    for n in (2, 50):
        labels = [f"topic-{i}" for i in range(n)]
        targets = rng.integers(0, n, 3000)
        predictions = np.where(rng.random(3000) < 0.7, targets, rng.integers(0, n, 3000))
        figure = confusion_figure(classification_report(targets, predictions, labels), "demo")
        axes = figure.axes[0]
        shares = np.asarray(axes.images[0].get_array())
        assert shares.shape == (n, n)
        np.testing.assert_allclose(shares.sum(axis=1), 1.0)
        assert [t.get_text() for t in axes.get_xticklabels()] == labels
        assert [t.get_text().split(" (")[0] for t in axes.get_yticklabels()] == labels
        if n == 2:
            small = figure.get_size_inches()
    assert (figure.get_size_inches() > small).all(), "50 classes get a bigger figure than 2"


def test_report_columns_are_the_keys_that_differ(runs):
    rows = compare_runs([runs["a"], runs["b"]])
    assert [row["model.hidden_size"] for row in rows] == [24, 32]
    assert [row["train.epochs"] for row in rows] == [3, 2]
    assert [row["output.tensorboard"] for row in rows] == [True, False]
    assert "model.encoder" not in rows[0] and "output.run_dir" not in rows[0]
    summary = json.loads((runs["a"] / "metrics.json").read_text())
    assert rows[0]["best_epoch"] == summary["best_epoch"]
    assert rows[0]["valid_accuracy"] == summary["valid"]["accuracy"]
    assert rows[0]["test_macro_f1"] == summary["test"]["macro_f1"]
    assert rows[1]["parameters"] > rows[0]["parameters"]
    single = compare_runs([runs["a"]])
    assert single[0]["model.encoder"] == "gru" and single[0]["model.hidden_size"] == 24


def test_report_command_prints_json_when_piped_and_writes_markdown(runs, workspace):
    result = rnnclf("report", "a", "b", "--out", "report.md", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert [row["model.hidden_size"] for row in json.loads(result.stdout)] == [24, 32]
    markdown = (workspace / "report.md").read_text().splitlines()
    header = [cell.strip() for cell in markdown[0].strip("|").split("|")]
    assert header[:2] == ["run", "model.hidden_size"] and "test_accuracy" in header
    assert set(markdown[1].replace("|", "").replace(":", "")) == {"-"}
    assert [line.split("|")[2].strip() for line in markdown[2:]] == ["24", "32"]
    table = rnnclf("report", "a", "b", "--format", "table", cwd=workspace)
    assert table.stdout.splitlines()[0].split()[:2] == ["run", "model.hidden_size"]
    assert len(table.stdout.splitlines()) == 3


def test_report_markdown_goes_through_a_link_and_into_a_pipe(runs, workspace):
    """--out a symbolic link writes its target (the link stays); --out /dev/stdout writes into the pipe."""
    (workspace / "reports").mkdir(exist_ok=True)
    (workspace / "reports" / "latest.md").write_text("old")
    (workspace / "link.md").symlink_to(workspace / "reports" / "latest.md")
    result = rnnclf("report", "a", "b", "--out", "link.md", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert (workspace / "link.md").is_symlink()
    assert (workspace / "reports" / "latest.md").read_text().startswith("| run")
    piped = rnnclf("report", "a", "b", "--out", "/dev/stdout", "--format", "table", cwd=workspace)
    assert piped.returncode == 0, piped.stderr
    assert "| run" in piped.stdout and piped.stdout.splitlines()[0].split()[:2] == ["run", "model.hidden_size"]


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("nowhere", "nowhere: run directory not found"),
        ("train.csv", "train.csv: not a directory"),
        ("empty", "empty: not a run directory (no config.yaml)"),
        ("unfinished", "unfinished: no metrics.json; training has not finished"),
    ],
)
def test_report_mistakes_are_one_line_exit_2(runs, workspace, target, fragment):
    (workspace / "empty").mkdir(exist_ok=True)
    (workspace / "unfinished").mkdir(exist_ok=True)
    shutil.copy(runs["a"] / "config.yaml", workspace / "unfinished" / "config.yaml")
    result = rnnclf("report", "a", target, cwd=workspace)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rnnclf: error: {fragment}"), result.stderr


def test_report_and_help_stay_light(runs):
    result = run_light(
        [["--help"], ["report", str(runs["a"]), "--format", "markdown"]], {"torch", "matplotlib", "tensorboard"}
    )
    assert "| run |" in result.stdout


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_logs_steps_and_epochs(runs):
    logged = scalars(runs["a"])
    assert SCALARS <= set(logged)
    epochs = [json.loads(line) for line in (runs["a"] / "metrics.jsonl").read_text().splitlines()]
    assert [step for step, _ in logged["valid/accuracy"]] == [e["step"] for e in epochs]
    np.testing.assert_allclose(
        [v for _, v in logged["valid/macro_f1"]], [e["valid_macro_f1"] for e in epochs], rtol=1e-6
    )
    assert [step for step, _ in logged["train/loss"]] == list(range(1, epochs[-1]["step"] + 1))
    assert not (runs["b"] / "tensorboard").exists(), "off by default"


def test_tensorboard_resume_does_not_log_steps_twice(workspace):
    """Stop in epoch 3, then roll the state back to an older save: the steps trained again replace their events."""
    run = workspace / "resumed"
    backup = workspace / "backup.safetensors"

    def log(line: str) -> None:
        if line.startswith("epoch 2/3"):
            shutil.copy(run / "state" / "state.safetensors", backup)  # saved at step 40, inside epoch 2
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(TrainingStopped):
        train_run(workspace, "resumed", "train.save_every=20", log=log)
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


def test_missing_matplotlib_skips_the_pngs_only(workspace, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    lines = []
    run = train_run(workspace, "no_plots", "output.tensorboard=false", log=lines.append)
    skipped = [line for line in lines if "matplotlib is not installed" in line]
    assert len(skipped) == 1 and "curves.png" in skipped[0] and "pip install 'rnnclf[plots]'" in skipped[0]
    assert (run / "metrics.json").exists() and not (run / "curves.png").exists()
    lines.clear()
    evaluate_and_draw(run, split="test", log=lines.append)
    assert lines[0].startswith("wrote ") and lines[0].endswith("test.json")
    assert len(lines) == 2 and "test_confusion_matrix.png" in lines[1] and "rnnclf[plots]" in lines[1]
    assert (run / "eval" / "test.json").exists() and not (run / "eval" / "test_confusion_matrix.png").exists()


def test_missing_tensorboard_fails_before_the_run_exists(workspace, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(RnnclfError, match=r"output.tensorboard .* pip install 'rnnclf\[tensorboard\]'"):
        train_run(workspace, "no_board")
    assert not (workspace / "no_board").exists()


def test_tensorboard_override_keeps_the_default_run_dir(workspace):
    config = load_config(workspace / "config.yaml", ["output.tensorboard=false"])
    assert config.output.tensorboard is False and config.output.run_dir == Path("runs") / "config"
    assert load_config(workspace / "config.yaml").output.tensorboard is True
