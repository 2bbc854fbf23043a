"""Reproduce the README's results table: rnnclf on R8, R52 and 20NG over several seeds, next to
fastText trained on the same splits in the same run and the published figures.

    .venv/bin/pip install fasttext-numpy2==0.10.4     # script-only dependency, not one of rnnclf's
    .venv/bin/python scripts/results.py [--corpora r8 r52 20ng] [--seeds 0 1 2] [--out results]

Each corpus trains with configs/<corpus>.yaml (chosen on the validation split; the test split is
only read for the final figures). Runs go to <out>/runs/, the table to <out>/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# test accuracy (%) as published; see ../shared/corpora.md for sources
PUBLISHED = {
    "fastText (TextGCN paper)": {"r8": 96.1, "r52": 92.8, "20ng": 79.4},
    "Bi-LSTM (TextGCN paper)": {"r8": 96.3, "r52": 90.5, "20ng": 73.2},
    "TextGCN": {"r8": 97.1, "r52": 93.6, "20ng": 86.3},
    "WideMLP": {"r8": 97.3, "r52": 94.0, "20ng": 84.2},
    "BERT (BertGCN paper)": {"r8": 97.8, "r52": 96.4, "20ng": 85.3},
}
TARGETS = {"r8": 97.5, "r52": 94.0, "20ng": 84.0}


def run_rnnclf(corpus: str, seed: int, out: Path) -> dict:
    run_dir = out / "runs" / f"{corpus}-seed{seed}"
    if not (run_dir / "metrics.json").exists():
        if run_dir.exists():
            raise SystemExit(f"{run_dir} exists without metrics.json (an interrupted run?); delete it and rerun")
        command = [
            sys.executable,
            "-m",
            "rnnclf",
            "train",
            "--config",
            str(ROOT / "configs" / f"{corpus}.yaml"),
            "--set",
            f"train.seed={seed}",
            "--run-dir",
            str(run_dir),
        ]
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    return json.loads((run_dir / "metrics.json").read_text())


def run_fasttext(corpus: str) -> tuple[float, float]:
    """fastText with dim 100, word bigrams, 25 epochs, lr 1.0 (its tutorial's setting for these options),
    2 threads, on the official train split; (accuracy, seconds)."""
    import fasttext

    from rnnclf.data.builtin import fetch

    files = fetch(corpus)

    def write(split: str, handle) -> list[str]:
        labels = []
        lines = files[split].read_text(encoding="utf-8").splitlines()
        # the corpora are sorted by class, and fastText does not shuffle its input: shuffle it here
        random.Random(0).shuffle(lines)
        for line in lines:
            row = json.loads(line)
            label = "_".join(row["label"].split())
            labels.append(label)
            handle.write(f"__label__{label} {' '.join(row['text'].split())}\n")
        handle.flush()
        return labels

    with (
        tempfile.NamedTemporaryFile("w", suffix=".txt") as train,
        tempfile.NamedTemporaryFile("w", suffix=".txt") as test,
    ):
        write("train", train)
        truth = write("test", test)
        start = time.perf_counter()
        model = fasttext.train_supervised(train.name, dim=100, wordNgrams=2, epoch=25, lr=1.0, thread=2, verbose=0)
        seconds = time.perf_counter() - start
        texts = [line.split(" ", 1)[1].rstrip("\n") for line in Path(test.name).read_text().splitlines()]
        predicted = [labels[0].removeprefix("__label__") for labels in model.predict(texts)[0]]
    return 100 * sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["r8", "r52", "20ng"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--no-fasttext", action="store_true", help="skip the fastText baseline")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    rows = {}
    for corpus in args.corpora:
        runs = [run_rnnclf(corpus, seed, args.out) for seed in args.seeds]
        accuracies = [100 * run["test"]["accuracy"] for run in runs]
        rows[corpus] = {
            "accuracies": accuracies,
            "mean": statistics.mean(accuracies),
            "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "valid": statistics.mean(100 * run["valid"]["accuracy"] for run in runs),
            "seconds": statistics.mean(run["train_seconds"] for run in runs),
            "tokens_per_s": statistics.mean(run["tokens_per_s"] for run in runs),
        }
        if not args.no_fasttext:
            rows[corpus]["fasttext"], rows[corpus]["fasttext_seconds"] = run_fasttext(corpus)
        print(corpus, json.dumps(rows[corpus]), flush=True)

    env = json.loads((args.out / "runs" / f"{args.corpora[0]}-seed{args.seeds[0]}" / "env.json").read_text())
    lines = [
        f"Test accuracy (%), mean ± std over seeds {', '.join(map(str, args.seeds))}; "
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {env['threads']} torch threads, torch {env['torch']}.",
        "",
        "| model | " + " | ".join(c.upper() for c in args.corpora) + " |",
        "|---|" + "---|" * len(args.corpora),
        "| **rnnclf** (configs/<corpus>.yaml) | "
        + " | ".join(f"**{rows[c]['mean']:.2f} ± {rows[c]['std']:.2f}**" for c in args.corpora)
        + " |",
        "| rnnclf, each seed | "
        + " | ".join(" / ".join(f"{a:.2f}" for a in rows[c]["accuracies"]) for c in args.corpora)
        + " |",
        "| rnnclf training time per run (2 CPU cores) | "
        + " | ".join(
            f"{rows[c]['seconds'] / 60:.1f} min ({rows[c]['tokens_per_s'] / 1000:.0f}k tok/s)" for c in args.corpora
        )
        + " |",
    ]
    if not args.no_fasttext:
        lines.append(
            "| fastText here, same splits (dim 100, bigrams, 25 epochs, lr 1.0, 2 threads) | "
            + " | ".join(f"{rows[c]['fasttext']:.2f} ({rows[c]['fasttext_seconds']:.0f}s)" for c in args.corpora)
            + " |"
        )
    for name, figures in PUBLISHED.items():
        lines.append(f"| {name}, published | " + " | ".join(f"{figures[c]:.1f}" for c in args.corpora) + " |")
    lines.append("| target of issue 3 | " + " | ".join(f"{TARGETS[c]:.1f}" for c in args.corpora) + " |")
    table = "\n".join(lines) + "\n"
    (args.out / "results.md").write_text(table, encoding="utf-8")
    (args.out / "results.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
