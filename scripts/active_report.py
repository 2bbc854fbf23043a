"""The figure and tables of issue 26's measurements: labelling in rounds (scripts/active_learning.py) and adding a
label by an update against a full retrain (scripts/update_experiment.py).

    python -m scripts.active_report

Reads results/active/<corpus>.jsonl and update_<corpus>.jsonl, the rounds' runs (for the linear model fitted on
the same labels: each run's linear_baseline) and the full-data reference: the recipe's seed runs 0-2
(results/runs/<corpus>-seed<S>, docs/results.md). Writes results/active/active_learning.md and .png.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "active"
WORK = ROOT / "results" / "runs" / "active"
NAMES = {"r8": "R8", "20ng": "20 Newsgroups"}
COLORS = {"margin": "tab:blue", "entropy": "tab:orange", "diverse": "tab:green", "random": "tab:red"}


def full_data(corpus: str) -> list[float]:
    """Test accuracy of the recipe trained on every training label (seeds 0-2)."""
    runs = [ROOT / "results" / "runs" / f"{corpus}-seed{seed}" / "metrics.json" for seed in range(3)]
    return [json.loads(path.read_text())["test"]["accuracy"] for path in runs if path.exists()]


def rounds(corpus: str) -> dict[str, dict[int, list[dict]]]:
    """strategy -> labels used -> that round's records over the seeds (with the linear model's accuracy)."""
    path = RESULTS / f"{corpus}.jsonl"
    out: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for line in path.read_text().splitlines() if path.exists() else []:
        row = json.loads(line)
        folder = WORK / corpus / f"seed{row['seed']}" / ("first" if row["round"] == 0 else row["strategy"])
        metrics = folder / f"round{row['round']}" / "run" / "metrics.json"
        linear = json.loads(metrics.read_text()).get("linear_baseline") if metrics.exists() else None
        row["linear_accuracy"] = linear["test"]["accuracy"] if linear and linear.get("test") else None
        out[row["strategy"]][row["labels"]].append(row)
    return out


def needed(curve: dict[int, list[dict]], target: float) -> int | None:
    """The fewest labels at which the mean test accuracy over the seeds reaches `target` (None: never, to 30%)."""
    for labels in sorted(curve):
        if np.mean([row["test_accuracy"] for row in curve[labels]]) >= target:
            return labels
    return None


def table(corpus: str) -> list[str]:
    data, full = rounds(corpus), full_data(corpus)
    if not data:
        return []
    target = float(np.mean(full)) - 0.01
    lines = [
        f"### {NAMES[corpus]}",
        "",
        f"Full training split (the recipe, {len(full)} seeds): **{100 * np.mean(full):.2f}%** ± {100 * np.std(full):.2f}; "
        f"target (full - 1 point): {100 * target:.2f}%.",
        "",
        "| labels used | " + " | ".join(data) + " | linear model (random's labels) |",
        "|---" * (len(data) + 2) + "|",
    ]
    counts = sorted({labels for curve in data.values() for labels in curve})
    for labels in counts:
        cells = []
        for curve in data.values():
            scores = [row["test_accuracy"] for row in curve.get(labels, [])]
            cells.append(f"{100 * np.mean(scores):.2f} ± {100 * np.std(scores):.2f} ({len(scores)})" if scores else "")
        linear = [row["linear_accuracy"] for row in data.get("random", {}).get(labels, []) if row["linear_accuracy"]]
        cells.append(f"{100 * np.mean(linear):.2f}" if linear else "")
        lines.append(f"| {labels:,} | " + " | ".join(cells) + " |")
    reach = {strategy: needed(curve, target) for strategy, curve in data.items()}
    lines += ["", "Labels needed to reach full - 1 point (mean over seeds): " + ", ".join(
        f"{strategy} {value:,}" if value else f"{strategy} not within {max(data[strategy]):,}"
        for strategy, value in reach.items()
    ) + ".", ""]  # fmt: skip
    return lines


def linear_accuracy(run: Path) -> float | None:
    """A run's linear baseline's test accuracy (None when it has none)."""
    path = run / "metrics.json"
    linear = json.loads(path.read_text()).get("linear_baseline") if path.exists() else None
    return linear["test"]["accuracy"] if linear and linear.get("test") else None


def update_table(corpus: str) -> list[str]:
    path = RESULTS / f"update_{corpus}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    if not rows:
        return []
    first = rows[0]
    lines = [
        f"### Adding a label to {NAMES[corpus]}: '{first['label']}' (update: {first['epochs']} epochs, rehearsal "
        f"{first['rehearsal']:g} old texts per epoch)",
        "",
        "| | old labels' test texts | new label's test texts | all test texts | wall time (s) |",
        "|---|---|---|---|---|",
    ]
    for kind in ("update", "retrain"):
        cells = [
            f"{100 * np.mean([r[kind][key] for r in rows]):.2f} ± {100 * np.std([r[kind][key] for r in rows]):.2f}"
            for key in ("old", "new", "all")
        ]
        seconds = [r[kind]["seconds"] for r in rows]
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {np.mean(seconds):.0f} ± {np.std(seconds):.0f} |")
    for kind in ("update", "retrain"):  # the linear model fitted on the same training texts: each run's baseline
        linear = [linear_accuracy(WORK / f"update-{corpus}" / f"{kind}-seed{r['seed']}") for r in rows]
        if all(value is not None for value in linear):
            cells = f"{100 * np.mean(linear):.2f} ± {100 * np.std(linear):.2f}"
            lines.append(f"| linear model on the {kind}'s training texts | | | {cells} | |")
    ratio = [r["update"]["seconds"] / r["retrain"]["seconds"] for r in rows]
    gaps = {key: [100 * (r["update"][key] - r["retrain"][key]) for r in rows] for key in ("old", "new")}
    lines += [
        "",
        f"Seeds {', '.join(str(r['seed']) for r in rows)}; update / retrain time {min(ratio):.0%} to {max(ratio):.0%}; "
        f"update minus retrain, old labels {min(gaps['old']):+.2f} to {max(gaps['old']):+.2f} points, new label "
        f"{min(gaps['new']):+.2f} to {max(gaps['new']):+.2f}. The old model alone on the old labels' test texts: "
        f"{100 * np.mean([r['old_model'] for r in rows]):.2f}%.",
        "",
    ]
    return lines


def figure(corpora: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(corpora), figsize=(6 * len(corpora), 4.2), squeeze=False)
    for ax, corpus in zip(axes[0], corpora, strict=True):
        lowest = 100.0
        for strategy, curve in rounds(corpus).items():
            labels = sorted(curve)
            means = [100 * np.mean([r["test_accuracy"] for r in curve[n]]) for n in labels]
            spread = [100 * np.std([r["test_accuracy"] for r in curve[n]]) for n in labels]
            ax.errorbar(
                labels, means, yerr=spread, marker="o", markersize=3, capsize=2, label=strategy, color=COLORS[strategy]
            )
            lowest = min(lowest, min(means))
        full = 100 * np.mean(full_data(corpus))
        ax.axhline(full, color="black", linewidth=1, label="full training split")
        ax.axhline(full - 1, color="black", linewidth=1, linestyle="--", label="full - 1 point")
        ax.set_xscale("log")
        ax.set_xlabel("training labels used")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(max(lowest - 2, 0), 100)
        ax.set_title(NAMES[corpus])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "active_learning.png", dpi=110)


def report() -> None:
    corpora = [corpus for corpus in NAMES if (RESULTS / f"{corpus}.jsonl").exists()]
    lines = ["# Labelling in rounds and updates (issue 26)", ""]
    for corpus in corpora:
        lines += table(corpus)
    for corpus in NAMES:
        lines += update_table(corpus)
    (RESULTS / "active_learning.md").write_text("\n".join(lines) + "\n")
    if corpora:
        figure(corpora)
    print("\n".join(lines))


if __name__ == "__main__":
    report()
