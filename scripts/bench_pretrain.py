"""Language-model pretraining speed: the adaptive softmax against the full one, side by side in one run (tokens per second, time, perplexity).

    .venv/bin/python scripts/bench_pretrain.py [--corpus r8] [--epochs 1] [--out results/bench_pretrain]

Runs `rnnclf pretrain --config configs/<corpus>-lm.yaml` (the code users run) for --epochs with each output
layer in turn, and reports tokens per second (both directions' tokens counted once), seconds per
epoch and validation perplexity. With --busy a second process keeps one core busy throughout (the state
of a shared machine). Writes <out>.json and <out>.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def pretrain_epoch(corpus: str, softmax: str, epochs: int, folder: Path) -> dict:
    run = folder / f"{corpus}-{softmax}"
    command = [sys.executable, "-m", "rnnclf", "pretrain", "--config", str(ROOT / "configs" / f"{corpus}-lm.yaml")]
    command += ["--set", f"train.epochs={epochs}", "--set", f"pretrain.softmax={softmax}", "--run-dir", str(run)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = records[-1]
    return {
        "tokens_per_s": sum(r["tokens_per_s"] for r in records) / len(records),
        "epoch_seconds": sum(r["epoch_seconds"] for r in records) / len(records),
        "valid_perplexity": last["valid_perplexity"],
        "output_layer": json.loads((run / "language_model.json").read_text())["output_layer"],
        "parameters": json.loads((run / "metrics.json").read_text())["parameters"]["trainable"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="r8")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another process")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_pretrain")
    args = parser.parse_args()
    stop = multiprocessing.Event()
    burner = multiprocessing.Process(target=burn, args=(stop,)) if args.busy else None
    if burner:
        burner.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            results = {
                kind: pretrain_epoch(args.corpus, kind, args.epochs, Path(folder)) for kind in ("adaptive", "full")
            }
    finally:
        if burner:
            stop.set()
            burner.join()
    ratio = results["adaptive"]["tokens_per_s"] / results["full"]["tokens_per_s"]
    report = {
        "corpus": args.corpus,
        "epochs": args.epochs,
        "busy": args.busy,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "results": results,
        "adaptive_over_full": ratio,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    lines = [
        f"rnnclf pretrain, configs/{args.corpus}-lm.yaml, {args.epochs} epoch(s), {report['machine']}"
        + (", one core kept busy by another process" if args.busy else ", idle machine"),
        "",
        "| output layer | tokens/s | s/epoch | valid perplexity |",
        "|---|---:|---:|---:|",
    ]
    for kind, row in results.items():
        lines.append(
            f"| {kind} ({row['output_layer']}) | {row['tokens_per_s']:,.0f} | {row['epoch_seconds']:.1f} | "
            f"{row['valid_perplexity']:.1f} |"
        )
    lines += ["", f"adaptive / full speed: {ratio:.2f}x"]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
