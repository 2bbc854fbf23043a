"""Sections wide and linear (issue 23), whole `rnnclf` processes as users run them:

wide    `rnnclf train` of the reference workload (2 epochs; R8 and 1 epoch with --quick) with and without
        model.wide, the two alternating: training tokens/s (the loop's own, metrics.json), the wide head's one-time
        fit and the whole process's seconds, and their ratios
linear  the linear model alone (model.encoder none, model.wide) on 20NG: `rnnclf train` wall seconds and its test
        accuracy; then `rnnclf predict --input` over 20,000 R8 texts, whole process (imports and start-up
        included), for the linear model and for a recurrent R8 model, side by side
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .common import Plan, num, say
from .predict import quickstart_run
from .states import prediction_texts


def rnnclf(*args: str, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rnnclf", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return time.perf_counter() - started, done


def workload(plan: Plan, folder: Path, wide: bool) -> Path:
    """The reference workload as a config file: 20NG, word tokens, embedding 100, bidirectional LSTM 128."""
    config = {
        "data": {"dataset": "r8" if plan.quick else "20ng", "max_length": plan.max_length},
        "embedding": {"dim": 100},
        "model": {"encoder": "lstm", "hidden_size": 32 if plan.quick else 128, "wide": wide},
        "train": {"epochs": 1 if plan.quick else 2, "batch_size": 64, "num_threads": plan.threads, "seed": 0},
    }
    path = folder / f"reference-{'wide' if wide else 'plain'}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def bench_wide(plan: Plan, folder: Path) -> dict[str, Any]:
    """Training with and without the wide head, alternating (twice each unless --quick): the best of each."""
    out: dict[str, Any] = {"rounds": 1 if plan.quick else 2}
    best: dict[str, dict[str, float]] = {}
    for round_ in range(out["rounds"]):
        for wide in (False, True):
            name = "wide" if wide else "plain"
            run = folder / f"{name}-{round_}"
            seconds, _ = rnnclf(
                "train", "--config", str(workload(plan, folder, wide)), "--run-dir", str(run), cwd=folder
            )
            summary = json.loads((run / "metrics.json").read_text())
            figures = {"tokens_per_s": summary["tokens_per_s"], "process_seconds": seconds}
            figures["train_seconds"] = summary["train_seconds"]
            if wide:
                figures["fit_seconds"] = sum(point["seconds"] for point in summary["wide"]["path"])
            if name not in best or figures["process_seconds"] < best[name]["process_seconds"]:
                best[name] = figures
    out |= best
    out["throughput_ratio"] = best["wide"]["tokens_per_s"] / best["plain"]["tokens_per_s"]
    out["process_ratio"] = best["wide"]["process_seconds"] / best["plain"]["process_seconds"]
    say(
        f"training tokens/s with the wide head / without: {out['throughput_ratio']:.2f}x (the fit: "
        f"{best['wide']['fit_seconds']:.1f}s once); whole process {out['process_ratio']:.2f}x"
    )
    return out


def bench_linear(plan: Plan, run_path: Path, folder: Path) -> dict[str, Any]:
    """The linear model alone: its training on 20NG, and predicting 20,000 texts next to a recurrent model (the
    quickstart run at `run_path`, or a tiny one trained here)."""
    recurrent_run = quickstart_run(run_path, folder, plan.quick)
    dataset = "r8" if plan.quick else "20ng"
    (folder / "linear.yaml").write_text(f"data: {{dataset: {dataset}}}\nmodel: {{encoder: none, wide: true}}\n")
    seconds, _ = rnnclf("train", "--config", "linear.yaml", "--run-dir", "linear", cwd=folder)
    summary = json.loads((folder / "linear" / "metrics.json").read_text())
    out: dict[str, Any] = {
        "dataset": dataset,
        "train_process_seconds": seconds,
        "test_accuracy": summary["test"]["accuracy"],
    }
    say(
        f"rnnclf train, linear model alone on {dataset}: {seconds:.1f}s, test accuracy {summary['test']['accuracy']:.4f}"
    )
    if dataset != "r8":
        (folder / "linear-r8.yaml").write_text("data: {dataset: r8}\nmodel: {encoder: none, wide: true}\n")
        rnnclf("train", "--config", "linear-r8.yaml", "--run-dir", "linear-r8", cwd=folder)
    linear_run = folder / ("linear" if dataset == "r8" else "linear-r8")
    count = 1_000 if plan.quick else 20_000
    texts = prediction_texts(count, folder)
    for name, run in (("linear", linear_run), ("recurrent", recurrent_run)):
        best = min(
            rnnclf("predict", str(run), "--input", str(texts), "--format", "json", cwd=folder)[0]
            for _ in range(1 if plan.quick else 3)
        )
        out[f"{name}_predict_texts_per_s"] = count / best
        say(
            f"rnnclf predict --input ({count:,} R8 texts), {name} model, whole process: {num(count / best)} texts/s ({best:.2f}s)"
        )
    return out
