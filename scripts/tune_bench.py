"""Measure `rnnclf tune` against the README's targets, running the commands users run:

- r52: `rnnclf tune --config configs/r52-hand.yaml --budget 30m`, then the hand-tuned configs/r52-hand.yaml and the tune's
  best.yaml each trained with seeds 0, 1, 2: validation (what chose) beside test (read once per run, at the end).
- small: a config that names only the corpus (R8, every other key at its default: the untuned default config),
  `rnnclf tune --budget 5m`, timed from the outside; the best trial's validation accuracy against trial 0's (that
  default config as given).
- overhead: per trial, the trial's time (Optuna's) minus its epochs' training and validation time (metrics.jsonl):
  starting, data from the token cache, the model (GloVe included), the final report, bookkeeping. Measured on
  every tune above, and on its own tune of many short trials: configs/r52-hand.yaml, 2 epochs, 8 trials.

    .venv/bin/python scripts/tune_bench.py [--only r52 small] [--out results/tune]

Writes <out>/tune_bench.json and <out>/tune_bench.md. A phase whose outputs exist is read, not run again.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (0, 1, 2)


def rnnclf(*args: str) -> None:
    command = [sys.executable, "-m", "rnnclf", *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def tune(config: Path, budget: str, out: Path) -> dict:
    """Run the tune unless its summary is there; returns the summary with the command's wall time."""
    timing = out / "wall_seconds.json"
    if not (out / "summary.json").exists():
        started = time.perf_counter()
        rnnclf("tune", "--config", str(config), "--budget", budget, "--out", str(out), "--format", "json")
        (timing).write_text(json.dumps({"wall_seconds": time.perf_counter() - started}))
    summary = json.loads((out / "summary.json").read_text())
    return summary | json.loads(timing.read_text())


def train_seeds(name: str, config: Path, out: Path) -> list[dict]:
    runs = []
    for seed in SEEDS:
        run_dir = out / "runs" / f"{name}-seed{seed}"
        if not (run_dir / "metrics.json").exists():
            rnnclf("train", "--config", str(config), "--set", f"train.seed={seed}", "--run-dir", str(run_dir))
        runs.append(json.loads((run_dir / "metrics.json").read_text()))
    return runs


def spread(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "each": values}


def seeds_row(runs: list[dict]) -> dict:
    return {
        "valid_accuracy": spread([100 * r["valid"]["accuracy"] for r in runs]),
        "test_accuracy": spread([100 * r["test"]["accuracy"] for r in runs]),
        "test_macro_f1": spread([100 * r["test"]["macro_f1"] for r in runs]),
        "train_seconds": spread([r["train_seconds"] for r in runs]),
    }


def trials(out: Path) -> list[dict]:
    with (out / "trials.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def overheads(out: Path) -> list[float]:
    """Each finished trial's seconds outside its epochs' training and validation."""
    found = []
    for row in trials(out):
        log = Path(row["run_dir"]) / "metrics.jsonl"
        if row["state"] not in ("complete", "pruned") or not row["seconds"] or not log.exists():
            continue
        epochs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        found.append(float(row["seconds"]) - sum(e["epoch_seconds"] + e.get("valid_seconds", 0.0) for e in epochs))
    return found


def short_trials(out: Path) -> None:
    """Many short trials of configs/r52-hand.yaml (2 epochs each): what a trial costs besides its epochs."""
    folder = out / "r52-short-trials"
    if (folder / "summary.json").exists():
        return
    space = out / "lr-space.yaml"
    space.write_text("train.lr: {low: 0.001, high: 0.01, log: true}\n")
    rnnclf(
        "tune",
        "--config",
        str(ROOT / "configs" / "r52-hand.yaml"),
        "--space",
        str(space),
        "--set",
        "train.epochs=2",
        "--trials",
        "8",
        "--out",
        str(folder),
        "--format",
        "json",
    )


def r52(out: Path) -> dict:
    summary = tune(ROOT / "configs" / "r52-hand.yaml", "30m", out / "r52-tune")
    return {
        "tune": summary,
        "trials": trials(out / "r52-tune"),
        "hand_tuned": seeds_row(train_seeds("r52-hand", ROOT / "configs" / "r52-hand.yaml", out)),
        "tuned": seeds_row(train_seeds("r52-tuned", out / "r52-tune" / "best.yaml", out)),
    }


def small(out: Path) -> dict:
    config = out / "r8-default.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("# R8 with every key at rnnclf's default: the untuned default config\ndata:\n  dataset: r8\n")
    summary = tune(config, "5m", out / "r8-default-tune")
    return {"tune": summary, "trials": trials(out / "r8-default-tune")}


def markdown(results: dict, machine: str) -> str:
    lines = ["# rnnclf tune: measured", "", machine, ""]
    if "r52" in results:
        r = results["r52"]
        tune_summary = r["tune"]
        lines += [
            "## R52, `--budget 30m` from configs/r52-hand.yaml",
            "",
            f"Tune: {tune_summary['trials']}, {tune_summary['wall_seconds'] / 60:.1f} min wall; best trial "
            f"{tune_summary['best']['trial']} valid {100 * tune_summary['best']['value']:.2f}, trial 0 (configs/r52-hand.yaml "
            f"as given) {100 * tune_summary['baseline']['value']:.2f}.",
            "",
            "| config | valid accuracy | test accuracy | test macro F1 | seconds per run |",
            "|---|---|---|---|---|",
        ]
        for name, row in (("configs/r52-hand.yaml (hand-tuned)", r["hand_tuned"]), ("best.yaml (tuned)", r["tuned"])):
            lines.append(
                f"| {name} | {_pm(row['valid_accuracy'])} | {_pm(row['test_accuracy'])} | {_pm(row['test_macro_f1'])} "
                f"| {row['train_seconds']['mean']:.0f} |"
            )
        lines += ["", "Best params: `" + json.dumps(tune_summary["best"]["params"]) + "`", ""]
    if "small" in results:
        s = results["small"]["tune"]
        lines += [
            "## R8, untuned default config, `--budget 5m`",
            "",
            f"Wall time of the command: {s['wall_seconds']:.0f} s (target under 360 s); trials {s['trials']}; "
            f"best trial {s['best']['trial']} valid accuracy {100 * s['best']['value']:.2f} against trial 0 (the "
            f"default config) {100 * s['baseline']['value']:.2f}.",
            "",
        ]
    if results.get("overhead"):
        lines += [
            "## Overhead per trial (target under 2 s)",
            "",
            "| tune | trials | median s | max s |",
            "|---|---|---|---|",
        ]
        for name, o in results["overhead"].items():
            lines.append(f"| {name} | {o['trials']} | {o['median']:.2f} | {o['max']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def _pm(row: dict) -> str:
    return f"{row['mean']:.2f} ± {row['sd']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["r52", "small", "overhead"], default=["r52", "small", "overhead"])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "tune")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "tune_bench.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    if "r52" in args.only:
        results["r52"] = r52(out)
    if "small" in args.only:
        results["small"] = small(out)
    if "overhead" in args.only:
        short_trials(out)
    results["overhead"] = {
        name: {"trials": len(found), "median": statistics.median(found), "max": max(found)}
        for name in ("r52-tune", "r8-default-tune", "r52-short-trials")
        if (out / name / "trials.csv").exists() and (found := overheads(out / name))
    }
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; run on {time.strftime('%Y-%m-%d')}"
    )
    results["machine"] = machine
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    (out / "tune_bench.md").write_text(markdown(results, machine))
    print((out / "tune_bench.md").read_text())


if __name__ == "__main__":
    main()
