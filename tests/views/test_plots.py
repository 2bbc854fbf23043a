"""Pictures of runs: curves.png redrawn each epoch, confusion matrices per split, and what a missing matplotlib
skips."""

import sys
from pathlib import Path

import numpy as np
from matplotlib.image import imread

from rnnclf.evaluation.metrics import classification_report
from rnnclf.inference.evaluate import evaluate_run
from rnnclf.views.plots import confusion_figure, save_evaluation_figures

from helpers.data import sha256
from helpers.runs import train_run


def png_size(path: Path) -> tuple[int, int]:
    """(height, width) of a PNG that matplotlib can read back."""
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return image.shape[:2]


def test_curves_are_redrawn_after_every_epoch(plot_runs):
    seen = plot_runs["curves_per_epoch"]
    assert len(seen) == 3 and None not in seen
    assert len(set(seen)) == 3, "curves.png changes with each epoch"
    assert seen[-1] == sha256(plot_runs["a"] / "curves.png")
    height, width = png_size(plot_runs["a"] / "curves.png")
    assert width > height > 200


def evaluate_and_draw(run, split, log=lambda line: None):
    """What `rnnclf eval` does: the evaluation, then its pictures."""
    evaluation, written = evaluate_run(run, split=split, device="cpu", log=log)
    save_evaluation_figures(evaluation, written, log)
    return evaluation


def test_eval_writes_a_confusion_png_per_split(plot_runs):
    valid = evaluate_and_draw(plot_runs["a"], split="valid")
    test = evaluate_and_draw(plot_runs["a"], split="test")
    folder = plot_runs["a"] / "eval"
    assert valid["support"] != test["support"]
    assert (folder / "valid.json").exists() and (folder / "test.json").exists()
    for name in ("valid_confusion_matrix.png", "test_confusion_matrix.png"):
        height, width = png_size(folder / name)
        assert height > 200 and width > 200
    assert sha256(folder / "valid_confusion_matrix.png") != sha256(folder / "test_confusion_matrix.png")


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


def test_missing_matplotlib_skips_the_pngs_only(plot_workspace, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    lines = []
    run = train_run(plot_workspace, "no_plots", "output.tensorboard=false", log=lines.append)
    skipped = [line for line in lines if "matplotlib is not installed" in line]
    assert len(skipped) == 1 and "curves.png" in skipped[0] and "pip install 'rnnclf[plots]'" in skipped[0]
    assert (run / "metrics.json").exists() and not (run / "curves.png").exists()
    lines.clear()
    evaluate_and_draw(run, split="test", log=lines.append)
    assert lines[0].startswith("wrote ") and lines[0].endswith("test.json")
    assert len(lines) == 2 and "test_confusion_matrix.png" in lines[1] and "rnnclf[plots]" in lines[1]
    assert (run / "eval" / "test.json").exists() and not (run / "eval" / "test_confusion_matrix.png").exists()
