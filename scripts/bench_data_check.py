"""Time `rnnclf data check` as users run it (the CLI, in a subprocess): short texts on an idle machine and on a
machine busy with a second CPU-bound process, and long documents; each with planted problems counted back.

Short: train / valid / test CSV files (800k / 100k / 100k texts of 5-30 words from a Zipf-like vocabulary of
30,000 words, 5 labels, one of them rare) with exact test-in-train copies, near-duplicates (one word changed),
empty texts, repeated texts and conflicting labels. Long: 20,000 documents of 2,000-5,000 words (80 / 10 / 10)
with test documents copied from train, exactly and with 5% of their words changed. The same short corpus is checked
twice side by side: alone, and while a second process spins a CPU core (`python -c "while True: pass"`). Peak
memory is the check process's own maximum resident set (os.wait4). Also side by side: MinHash signatures of 20,000
texts by datasketch (one MinHash per text, as its docs show) and by rnnclf's vectorised code, as a ratio.
Results: results/bench_data_check.json.

    .venv/bin/python scripts/bench_data_check.py [--texts 1000000] [--long-texts 20000] [--folder /tmp/bench_data_check]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LONG_PLANTED = {"exact_overlap": 100, "near_overlap": 200}
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


def run_check(folder: Path) -> tuple[float, float, dict]:
    """(seconds, peak resident MB, report) of `rnnclf data check --config config.yaml` in `folder`."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        command = [sys.executable, "-m", "rnnclf", "data", "check", "--config", "config.yaml", "--format", "json"]
        process = subprocess.Popen(command, cwd=folder, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory, not every child's
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        if process.returncode != 0:
            sys.exit(f"rnnclf data check failed: {stderr.read()}")
        return seconds, usage.ru_maxrss / 1024, json.loads(stdout.read())


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """A second CPU-bound process for the duration: the state of a machine shared with another job."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1)  # let it take its core
        yield
    finally:
        spinner.kill()
        spinner.wait()


def found(report: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in report["findings"]:
        counts[item["kind"]] = counts.get(item["kind"], 0) + item["count"]
    return counts


def long_corpus(count: int, seed: int = 1) -> dict[str, list[tuple[str, str]]]:
    """`count` documents of 2,000-5,000 Zipf-drawn words, 80 / 10 / 10, with test copies of train documents planted:
    LONG_PLANTED["exact_overlap"] exact, LONG_PLANTED["near_overlap"] with 5% of their words changed (Jaccard of
    the bigram sets about 0.82)."""
    rng = np.random.default_rng(seed)
    words = np.asarray(vocabulary(random.Random(seed)))
    weights = 1 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    labels = np.asarray(["world", "sports", "business", "science"])
    documents = [
        (" ".join(words[rng.choice(len(words), size, p=weights)].tolist()), str(labels[rng.integers(len(labels))]))
        for size in rng.integers(2_000, 5_001, count)
    ]
    train_size, valid_size = int(count * 0.8), int(count * 0.1)
    train, test = documents[:train_size], documents[train_size + valid_size :]
    for i in range(LONG_PLANTED["exact_overlap"]):
        test[i] = train[i]
    for i in range(LONG_PLANTED["near_overlap"]):
        text, label = train[1_000 + i]
        tokens = text.split()
        for at in rng.choice(len(tokens), len(tokens) // 20, replace=False):
            tokens[at] = "changedword"
        test[LONG_PLANTED["exact_overlap"] + i] = (" ".join(tokens), label)
    return {"train": train, "valid": documents[train_size : train_size + valid_size], "test": test}


def measure(folder: Path, splits: dict, planted: dict) -> dict:
    """Check the corpus written in `folder`: seconds, texts/s, words/s, peak memory, planted against found."""
    texts = sum(len(rows) for rows in splits.values())
    words = sum(len(text.split()) for rows in splits.values() for text, _ in rows)
    load_before = os.getloadavg()[0]
    seconds, peak_mb, report = run_check(folder)
    counts = found(report)
    return {
        "texts": texts,
        "words": words,
        "seconds": round(seconds, 1),
        "texts_per_second": round(texts / seconds),
        "words_per_second": round(words / seconds),
        "peak_memory_mb": round(peak_mb),
        "planted": planted,
        "found": {kind: counts.get(kind, 0) for kind in planted} | {"imbalance": "imbalance" in counts},
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


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
    parser.add_argument("--long-texts", type=int, default=20_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/bench_data_check"))
    args = parser.parse_args()
    start = time.perf_counter()
    short, long = corpus(args.texts), long_corpus(args.long_texts)
    write(args.folder / "short", short)
    write(args.folder / "long", long)
    generated = time.perf_counter() - start
    planted = PLANTED | {"duplicates": PLANTED["duplicates"] + PLANTED["conflicting_labels"]}  # a conflict repeats
    idle = measure(args.folder / "short", short, planted)
    with busy_core():
        busy = measure(args.folder / "short", short, planted)
    long_documents = measure(args.folder / "long", long, LONG_PLANTED)
    result = {
        "command": "rnnclf data check --config config.yaml --format json",
        "short_idle": idle,
        "short_busy": busy,
        "busy_over_idle": round(busy["seconds"] / idle["seconds"], 2),
        "long_documents": long_documents,
        "minhash": minhash_ratio(short),
        "generate_seconds": round(generated, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "busy": "a second process spinning one core (python -c 'while True: pass') during short_busy",
        "threads": "tokenizers (Rust, rayon) uses every core for fitting and encoding; numpy single-threaded",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "reproduce": f"python scripts/bench_data_check.py --texts {args.texts} --long-texts {args.long_texts}",
    }
    print(json.dumps(result, indent=2))
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "bench_data_check.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
