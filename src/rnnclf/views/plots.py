"""Pictures of a run: curves.png after each epoch, the confusion matrix and reliability diagram after eval.

matplotlib is an optional extra, imported only here and only when used. Figures are drawn on matplotlib's
Agg canvas through the object API (no pyplot), so no global backend is changed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.files import METRICS_LOG, write_atomic

CURVES = "curves.png"


INSTALL_PLOTS = "pip install 'rnnclf[plots]'"


Log = Callable[[str], None]


def plotting_available(name: str, log: Log) -> bool:
    """True when matplotlib imports; otherwise log one line naming the skipped PNG and the install command."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log(f"{name}: skipped, matplotlib is not installed (install it with: {INSTALL_PLOTS})")
        return False
    return True


def curves_figure(records: list[dict[str, Any]], metric: str, title: str) -> Any:
    """Loss (train and valid, the same objective) and the validation scores per epoch; the best epoch by `metric`
    is marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in records]
    scores = [r[f"valid_{metric}"] for r in records]
    best = epochs[int(np.argmin(scores) if metric == "loss" else np.argmax(scores))]
    style = "o-" if len(epochs) <= 30 else "-"  # markers show single epochs until they crowd

    figure = Figure(figsize=(10, 4), dpi=110, layout="constrained")
    loss_axes, score_axes = figure.subplots(1, 2)
    # like with like: the training objective (label smoothing, class weights) on both splits; the plain
    # cross-entropy of validation beside it when they differ (older runs have only the latter)
    objective = [r.get("valid_objective", r["valid_loss"]) for r in records]
    loss_axes.plot(epochs, [r["train_loss"] for r in records], style, label="train (objective)")
    loss_axes.plot(epochs, objective, style, label="valid (objective)")
    if objective != [r["valid_loss"] for r in records]:
        loss_axes.plot(epochs, [r["valid_loss"] for r in records], "--", label="valid cross-entropy")
    loss_axes.set(title="loss", xlabel="epoch", ylabel="loss")
    multi_label = "valid_micro_f1" in records[0]
    if multi_label:
        score_axes.plot(epochs, [r["valid_micro_f1"] for r in records], style, label="valid micro F1 (at 0.5)")
    name = "subset accuracy" if multi_label else "accuracy"
    score_axes.plot(epochs, [r["valid_accuracy"] for r in records], style, label=f"valid {name}")
    score_axes.plot(epochs, [r["valid_macro_f1"] for r in records], style, label="valid macro F1")
    score_axes.set(title="validation", xlabel="epoch", ylabel="score")
    for axes in (loss_axes, score_axes):
        axes.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best}, by valid {metric})")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)  # whole epochs, even with a single point
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(title)
    return figure


def confusion_figure(report: dict[str, Any], title: str) -> Any:
    """The row-normalised confusion matrix (each true class sums to 1), label names on both axes."""
    from matplotlib.figure import Figure

    labels = report["labels"]
    counts = np.asarray(report["confusion_matrix"], dtype=float)
    support = counts.sum(axis=1)
    shares = np.divide(counts, support[:, None], out=np.zeros_like(counts), where=support[:, None] > 0)
    n = len(labels)
    side = min(4 + 0.3 * n, 18)  # inches: a 2-class matrix stays small, 50 classes stay readable
    font = 10 if n <= 12 else 8.5 if n <= 25 else 7.5
    names = [label if len(label) <= 24 else label[:23] + "…" for label in labels]
    # labels level when they fit under their columns (about 10 characters an inch at font 10)
    rotation = 0 if max(map(len, names)) * font / 100 <= 0.7 * side / n else 45 if n <= 12 else 90

    figure = Figure(figsize=(side + 1.5, side), dpi=110, layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(n), names, rotation=rotation, ha="right" if rotation == 45 else "center")
    axes.set_yticks(range(n), [f"{name} ({int(s):,})" for name, s in zip(names, support, strict=True)])
    axes.tick_params(labelsize=font)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label (number of texts)")
    if n <= 20:  # beyond that the numbers no longer fit their cells; the colours still read
        for i in range(n):
            for j in range(n):
                if counts[i, j] or n <= 10:
                    color = "white" if shares[i, j] > 0.5 else "black"
                    axes.text(j, i, f"{shares[i, j]:.2f}", ha="center", va="center", fontsize=font - 1, color=color)
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of the true label's texts")
    axes.set_title(
        f"{title}\naccuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f}, "
        f"{report['support']:,} texts (rows sum to 1)",
        fontsize=10,
    )
    return figure


def label_f1_figure(report: dict[str, Any], title: str) -> Any:
    """Multi-label: each label's F1 as a horizontal bar, best first, with its support (texts) and threshold."""
    from matplotlib.figure import Figure

    rows = sorted(report["per_class"].items(), key=lambda item: (-item[1]["f1"], -item[1]["support"], item[0]))
    n = len(rows)
    font = 9 if n <= 30 else 7 if n <= 70 else 6
    figure = Figure(figsize=(8, min(2 + 0.16 * n, 24)), dpi=110, layout="constrained")
    axes = figure.subplots()
    f1 = [row["f1"] for _, row in rows]
    axes.barh(range(n), f1, color=plt_color(f1))
    names = [f"{label[:24]} ({row['support']:,}; t={row['threshold']:.2f})" for label, row in rows]
    axes.set_yticks(range(n), names)
    axes.tick_params(axis="y", labelsize=font)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.axvline(
        report["micro_f1"], color="black", linestyle="--", linewidth=1, label=f"micro F1 {report['micro_f1']:.3f}"
    )
    axes.axvline(
        report["macro_f1"], color="grey", linestyle=":", linewidth=1, label=f"macro F1 {report['macro_f1']:.3f}"
    )
    axes.set_xlabel("F1 (label: true texts; t = decision threshold)")
    axes.legend(fontsize="small", loc="lower right")
    axes.grid(axis="x", alpha=0.3)
    axes.set_title(f"{title}\n{n} labels, {report['support']:,} texts", fontsize=10)
    return figure


def reliability_figure(figures: dict[str, Any], title: str) -> Any:
    """The reliability diagram of an eval's calibration figures: each bin's observed frequency against its mean
    confidence, after the temperature (bars) and before it (line), with the texts per bin below."""
    from matplotlib.figure import Figure

    after, before = figures["reliability"], figures["reliability_before"]
    width = 1 / len(after)
    centres = [b["upper"] - width / 2 for b in after]
    figure = Figure(figsize=(5.5, 6), dpi=110, layout="constrained")
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    multi_label = isinstance(figures["temperature"], dict)
    filled = [i for i, b in enumerate(after) if b["count"]]
    top.bar(
        [centres[i] for i in filled],
        [after[i]["frequency"] for i in filled],
        width=width * 0.9,
        alpha=0.7,
        label=f"{'calibrated' if figures['temperature'] is not None else 'model'}: ECE {figures['ece']:.4f}",
    )
    if figures["temperature"] is not None:
        shown = [b for b in before if b["count"]]
        top.plot(
            [b["confidence"] for b in shown],
            [b["frequency"] for b in shown],
            "o-",
            color="tab:red",
            markersize=3,
            label=f"before the temperature: ECE {figures['ece_before']:.4f}",
        )
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed frequency")
    top.legend(fontsize="small", loc="upper left", framealpha=0.9)
    top.grid(alpha=0.3)
    bottom.bar(centres, [b["count"] for b in after], width=width * 0.9, color="tab:grey")
    what = "every text and label's probability" if multi_label else "the top class's probability"
    bottom.set(xlabel=f"predicted probability ({what})", ylabel="predictions", yscale="log")
    top.set_title(f"{title}\nreliability, {len(after)} bins; Brier {figures['brier']:.4f}", fontsize=10)
    return figure


def plt_color(values: list[float]) -> list[Any]:
    """Bars coloured from red (F1 0) to blue (F1 1)."""
    from matplotlib import colormaps

    return [colormaps["RdYlBu"](value) for value in values]


def perplexity_figure(records: list[dict[str, Any]], title: str) -> Any:
    """A language model's train and validation perplexity per epoch (log scale), the best epoch marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in records]
    valid = [r["valid_perplexity"] for r in records]
    style = "o-" if len(epochs) <= 30 else "-"
    figure = Figure(figsize=(6, 4), dpi=110, layout="constrained")
    axes = figure.subplots()
    axes.plot(epochs, [r["train_perplexity"] for r in records], style, label="train (with dropout)")
    axes.plot(epochs, valid, style, label="valid")
    best = epochs[int(np.argmin(valid))]
    axes.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best})")
    axes.set(title=title, xlabel="epoch", ylabel="perplexity", yscale="log")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return figure


def save_eval_figures(evaluation: dict[str, Any], folder: Path, name: str, title: str, log: Log) -> bool:
    """An eval report's PNGs in `folder`: <name>_confusion_matrix.png (multi-label: <name>_label_f1.png) and
    <name>_calibration.png, the reliability diagram. False (after one log line) when matplotlib is missing."""
    if evaluation.get("multi_label"):
        drawn = {f"{name}_label_f1.png": lambda: label_f1_figure(evaluation, title)}
    else:
        drawn = {f"{name}_confusion_matrix.png": lambda: confusion_figure(evaluation, title)}
    if "calibration" in evaluation:
        drawn[f"{name}_calibration.png"] = lambda: reliability_figure(evaluation["calibration"], title)
    if not plotting_available(", ".join(drawn), log):
        return False
    for file, figure in drawn.items():
        save_figure(figure(), folder / file)
    return True


def save_evaluation_figures(evaluation: dict[str, Any], written: Path, log: Log) -> bool:
    """The PNGs of an evaluation written to RUN/eval/<name>.json, beside it (see save_eval_figures)."""
    title = f"{written.parent.parent.resolve().name} on {written.stem}"
    return save_eval_figures(evaluation, written.parent, written.stem, title, log)


def save_figure(figure: Any, path: Path) -> None:
    """Render to PNG in memory, then write atomically: a reader never sees half an image."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())


def save_curves(run_dir: Path, metric: str, log: Log) -> bool:
    """Redraw RUN/curves.png from metrics.jsonl. False (after one log line) when matplotlib is missing."""
    if not plotting_available(CURVES, log):
        return False
    lines = (run_dir / METRICS_LOG).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    if records and metric == "perplexity":  # rnnclf pretrain
        title = f"{run_dir.resolve().name}: language model perplexity per epoch"
        save_figure(perplexity_figure(records, title), run_dir / CURVES)
    elif records:
        title = f"{run_dir.resolve().name}: loss and validation scores per epoch"
        save_figure(curves_figure(records, metric, title), run_dir / CURVES)
    return True


def save_cv_figure(summary: dict[str, Any], path: Path, log: Log) -> bool:
    """cv.png: each score of every fold's run (a dot per run), with the mean and ± one standard deviation."""
    if not plotting_available(path.name, log):
        return False
    from matplotlib.figure import Figure

    names = [name for name in summary["metrics"] if name not in ("train_seconds", "loss")]
    figure = Figure(figsize=(1.6 + 1.2 * len(names), 4), dpi=110, layout="constrained")
    axes = figure.subplots()
    for x, name in enumerate(names):
        values = [row[name] for row in summary["runs"]]
        jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
        axes.scatter(x + jitter, values, s=14, color="tab:blue", alpha=0.7)
        mean, std = summary["mean"][name], summary["std"][name]
        axes.errorbar(x + 0.3, mean, yerr=std, fmt="o", color="black", capsize=4)
        axes.annotate(f"{mean:.3f}±{std:.3f}", (x + 0.36, mean), fontsize=7, va="center")
    axes.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    runs = len(summary["runs"])
    axes.set_title(f"{summary['folds']}-fold cross-validation, {runs} runs: test fold scores (mean ± std)", fontsize=10)
    save_figure(figure, path)
    return True
