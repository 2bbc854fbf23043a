"""Time `rnnclf data check` as users run it (the CLI, in a subprocess) on 1M short texts with planted problems.

Writes train / valid / test CSV files (800k / 100k / 100k texts of 5-30 words from a Zipf-like vocabulary of
30,000 words, 5 labels, one of them rare), plants exact test-in-train copies, near-duplicates (one word
changed), empty texts, repeated texts and conflicting labels, runs the check, and says how many of each it found.
Side by side in the same run: MinHash signatures of 20,000 texts by datasketch (one MinHash per text, as its docs
show) and by rnnclf's vectorised code, as a ratio. Results: results/bench_data_check.json.

    .venv/bin/python scripts/bench_data_check.py [--texts 1000000] [--folder /tmp/bench_data_check]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLANTED = {"exact_overlap": 500, "near_overlap": 500, "empty_texts": 100, "duplicates": 1000, "conflicting_labels": 200}


def vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(words)


def corpus(count: int, seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    labels = ["world", "sports", "business", "science", "rare"]
    label_weights = [30, 30, 20, 19, 1]  # 30x imbalance: a finding with the class_weights hint
    drawn = iter(rng.choices(words, weights, k=count * 18))
    rows = [
        (" ".join(next(drawn) for _ in range(rng.randint(5, 30))), label)
        for label in rng.choices(labels, label_weights, k=count)
    ]
    train_size, valid_size = int(count * 0.8), int(count * 0.1)
    splits = {
        "train": rows[:train_size],
        "valid": rows[train_size : train_size + valid_size],
        "test": rows[train_size + valid_size :],
    }
    plant(splits, rng, words)
    return splits


def plant(splits: dict, rng: random.Random, words: list[str]) -> None:
    train, test = splits["train"], splits["test"]
    for i in range(PLANTED["exact_overlap"]):
        test[i] = train[1000 + i]
    for i in range(PLANTED["near_overlap"]):
        text, label = train[5000 + i]
        tokens = text.split() + rng.sample(words, 15)  # long enough that one change keeps Jaccard >= 0.6
        train[5000 + i] = (" ".join(tokens), label)
        tokens[len(tokens) // 2] = "changedword"
        test[1000 + i] = (" ".join(tokens), label)
    for i in range(PLANTED["empty_texts"]):
        train[20_000 + i] = ("   ", train[20_000 + i][1])
    for i in range(PLANTED["duplicates"]):
        train[30_000 + i] = train[40_000 + i]
    for i in range(PLANTED["conflicting_labels"]):
        text, label = train[50_000 + i]
        train[60_000 + i] = (text, "rare" if label != "rare" else "world")


def write(folder: Path, splits: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, valid: valid.csv, test: test.csv}\ntrain: {batch_size: 64}\n"
    )


def run_check(folder: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "rnnclf", "data", "check", "--config", "config.yaml", "--format", "json"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"rnnclf data check failed: {result.stderr}")
    return seconds, json.loads(result.stdout)


def found(report: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in report["findings"]:
        counts[item["kind"]] = counts.get(item["kind"], 0) + item["count"]
    return counts


def minhash_ratio(splits: dict, count: int = 20_000) -> dict:
    """datasketch's per-text MinHash against rnnclf's vectorised signatures on the same texts and shingles."""
    from rnnclf.check import minhash as check_minhash
    from rnnclf.check.findings import normalise

    texts = [normalise(text) for text, _ in splits["train"][:count]]
    start = time.perf_counter()
    check_minhash.signatures(check_minhash.shingles(texts))
    ours = time.perf_counter() - start
    try:
        from datasketch import MinHash
    except ImportError:
        return {"texts": count, "rnnclf_seconds": round(ours, 3), "datasketch": "not installed"}
    start = time.perf_counter()
    for text in texts:
        tokens = text.split()
        signature = MinHash(num_perm=check_minhash.PERMUTATIONS)
        signature.update_batch([" ".join(tokens[i : i + 2]).encode() for i in range(max(len(tokens) - 1, 1))])
    theirs = time.perf_counter() - start
    return {
        "texts": count,
        "rnnclf_seconds": round(ours, 3),
        "datasketch_seconds": round(theirs, 3),
        "datasketch_over_rnnclf": round(theirs / ours, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/bench_data_check"))
    args = parser.parse_args()
    start = time.perf_counter()
    splits = corpus(args.texts)
    write(args.folder, splits)
    generated = time.perf_counter() - start
    load_before = os.getloadavg()
    seconds, report = run_check(args.folder)
    counts = found(report)
    result = {
        "command": "rnnclf data check --config config.yaml --format json",
        "texts": args.texts,
        "seconds": round(seconds, 1),
        "texts_per_second": round(args.texts / seconds),
        "planted": PLANTED
        | {"duplicates": PLANTED["duplicates"] + PLANTED["conflicting_labels"]},  # a conflict is a repeat too
        "found": {kind: counts.get(kind, 0) for kind in PLANTED} | {"imbalance": "imbalance" in counts},
        "minhash": minhash_ratio(splits),
        "generate_seconds": round(generated, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "threads": "tokenizers (Rust, rayon) uses every core for fitting and encoding; numpy single-threaded",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "reproduce": "python scripts/bench_data_check.py --texts 1000000",
    }
    print(json.dumps(result, indent=2))
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "bench_data_check.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
