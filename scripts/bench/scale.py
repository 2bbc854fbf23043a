"""Sections memory and scale: peak resident memory of `rnnclf train` in a subprocess, and prepare() plus a
bounded training run on growing generated corpora, each size in its own subprocesses."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.config.schema import Config
from rnnclf.data.token_cache import prepare
from rnnclf.device.threads import use_cpu_threads

from .common import CPU, Plan, bench_command, reference_config, run_child, say, tail
from .pipelines import rnnclf_steps


def bench_memory(plan: Plan, folder: Path) -> dict[str, Any]:
    """Section 6: peak resident memory of `rnnclf train` in a subprocess, and of a bare `import rnnclf.recipes.classify`."""
    config = reference_config().model_dump(mode="json")
    config["train"] |= {"epochs": 1, "num_threads": plan.threads, "device": "cpu"}  # 20ng, max_length 400
    config["output"] = {"run_dir": str(folder / "memory-run")}
    if plan.memory_docs is not None:  # --quick: a small generated corpus instead of 20ng
        data = folder / "memory.csv"
        write_synthetic_corpus({plan.memory_docs: data})
        config["data"] = {"train": str(data), "max_length": 400}
        workload = f"the reference model, 1 epoch on {plan.memory_docs:,} generated short documents"
    else:
        workload = "the reference workload (20ng), 1 epoch, then evaluation on valid and test"
    config_path = folder / "memory.json"  # JSON is YAML
    config_path.write_text(json.dumps(config))
    log = folder / "memory.log"
    code, seconds, peak = run_child([sys.executable, "-m", "rnnclf", "train", "--config", str(config_path)], log)
    if code != 0:
        raise RuntimeError(f"rnnclf train failed ({code}):\n{tail(log)}")
    from_cache = "tokens: from the cache" in log.read_text()
    _, _, baseline = run_child([sys.executable, "-c", "import rnnclf.recipes.classify"], folder / "baseline.log")
    out = {
        "workload": workload,
        "tokens_from_cache": from_cache,
        "seconds": seconds,
        "peak_mib": peak,
        "import_baseline_mib": baseline,
    }
    say(
        f"rnnclf train ({workload}; tokens {'from the cache' if from_cache else 'tokenized'}): "
        f"peak RSS {peak:,.0f} MiB in {seconds:.1f}s; python + torch + rnnclf imported alone: {baseline:,.0f} MiB"
    )
    return out


# -------------------------------------------------------------------------------------- scale (section 7)

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


CLASSES, TOPIC_WORDS = 5, 40


def synthetic_rows(rng: np.random.Generator, words: np.ndarray, probs: np.ndarray, count: int) -> list[str]:
    """CSV lines `text,label`: 10-30 Zipf-distributed words, 15% of them drawn from the label's own topic words."""
    labels = rng.integers(0, CLASSES, count)
    lengths = rng.integers(10, 31, count)
    total = int(lengths.sum())
    ids = rng.choice(len(words), size=total, p=probs)
    topic = 100 + labels.repeat(lengths) * TOPIC_WORDS + rng.integers(0, TOPIC_WORDS, total)
    ids = np.where(rng.random(total) < 0.15, topic, ids)
    docs = np.split(words[ids], np.cumsum(lengths)[:-1])
    return [f"{' '.join(doc)},topic{label}\n" for doc, label in zip(docs, labels, strict=True)]


def write_synthetic_corpus(files: dict[int, Path], seed: int = 0) -> None:
    """Write one generated corpus; the file for size n holds its first n documents (one CSV per size)."""
    rng = np.random.default_rng(seed)
    vocabulary = sorted({a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES[:10]})
    words = rng.permutation(np.array(vocabulary))[:5_000]
    probs = 1.0 / np.arange(1, len(words) + 1)
    probs /= probs.sum()
    handles = {size: path.open("w", encoding="utf-8") for size, path in files.items()}
    try:
        for handle in handles.values():
            handle.write("text,label\n")
        written, chunk = 0, 50_000
        while written < max(files):
            rows = synthetic_rows(rng, words, probs, min(chunk, max(files) - written))
            for size, handle in handles.items():
                handle.writelines(rows[: max(0, size - written)])
            written += len(rows)
    finally:
        for handle in handles.values():
            handle.close()


def scale_config(path: Path) -> Config:
    return Config.model_validate(
        {
            "data": {"train": str(path), "max_length": 400},
            "embedding": {"dim": 64},
            "model": {"encoder": "lstm", "hidden_size": 64, "bidirectional": False},
            "train": {"batch_size": 64, "seed": 0},
        }
    )


def scale_child(path: Path, steps: int, threads: int) -> None:
    """In a subprocess: prepare() (tokenize + cache when cold, else load the cache), then `steps` training steps.

    The benchmark runs it twice per size: cold with no steps (the cost of tokenizing), then from the cache with
    steps (what every later `train` on the corpus costs): each process's peak memory is its own.
    """
    use_cpu_threads(threads)
    config = scale_config(path)
    start = time.perf_counter()
    prepared = prepare(config)
    prepare_seconds = time.perf_counter() - start
    pipeline = rnnclf_steps(config, prepared, CPU)
    start, tokens = time.perf_counter(), 0
    for _ in range(steps):
        tokens += next(pipeline)[0]
    result = {
        "cached": prepared.cached,
        "prepare_seconds": prepare_seconds,
        "train_seconds": time.perf_counter() - start,
        "train_tokens": tokens,
        "tokens_total": sum(int(encoded.lengths.sum()) for encoded in prepared.encoded.values()),
    }
    print(json.dumps(result), flush=True)


def bench_scale(plan: Plan, folder: Path) -> dict[str, Any]:
    """Section 7: the same small pipeline on growing generated corpora, each size in a fresh process."""
    sizes = sorted(plan.scale_sizes)
    files = {size: folder / f"scale-{size}.csv" for size in sizes}
    start = time.perf_counter()
    write_synthetic_corpus(files)
    say(
        f"generated {max(sizes):,} documents (10-30 words, 5,000-word vocabulary, {CLASSES} classes) "
        f"in {time.perf_counter() - start:.1f}s"
    )
    rows = []
    for size in sizes:
        env = os.environ | {"RNNCLF_CACHE": str(folder / f"scale-cache-{size}")}  # a cold token cache at first
        children = {}
        for phase, steps in (("cold", 0), ("cached", plan.scale_steps)):
            command = bench_command("--scale-child", str(files[size]), "--scale-steps", str(steps))
            log = folder / f"scale-{size}-{phase}.log"
            code, seconds, peak = run_child([*command, "--threads", str(plan.threads)], log, env)
            if code != 0:
                raise RuntimeError(f"scale child ({phase}) for {size:,} documents failed ({code}):\n{tail(log)}")
            children[phase] = json.loads(log.read_text().splitlines()[-1]) | {"peak_mib": peak, "seconds": seconds}
        cold, cached = children["cold"], children["cached"]
        row = {
            "docs": size,
            "file_mib": files[size].stat().st_size / 2**20,
            "tokens_total": cold["tokens_total"],
            "tokenize_seconds": cold["prepare_seconds"],
            "us_per_doc": cold["prepare_seconds"] / size * 1e6,
            "prepare_peak_mib": cold["peak_mib"],
            "second_prepare_from_cache": cached["cached"],
            "cached_prepare_seconds": cached["prepare_seconds"],
            "train_seconds": cached["train_seconds"],
            "train_tokens_per_s": cached["train_tokens"] / cached["train_seconds"],
            "train_peak_mib": cached["peak_mib"],
            "peak_mib": max(cold["peak_mib"], cached["peak_mib"]),
        }
        rows.append(row)
        say(
            f"{size:>9,} docs: prepare {row['tokenize_seconds']:6.1f}s ({row['us_per_doc']:.1f} us/doc, peak RSS "
            f"{row['prepare_peak_mib']:,.0f} MiB); from the cache {row['cached_prepare_seconds']:.2f}s + "
            f"{plan.scale_steps} steps {row['train_seconds']:5.1f}s (peak RSS {row['train_peak_mib']:,.0f} MiB)"
        )
    first = rows[0]
    for row in rows:
        row["time_growth"] = row["tokenize_seconds"] / first["tokenize_seconds"]
        row["size_growth"] = row["docs"] / first["docs"]
        row["prepare_memory_growth"] = row["prepare_peak_mib"] / first["prepare_peak_mib"]
        row["train_memory_growth"] = row["train_peak_mib"] / first["train_peak_mib"]
    say(
        "growth vs the smallest size: "
        + "; ".join(
            f"{row['docs']:,}: size x{row['size_growth']:.0f}, prepare time x{row['time_growth']:.1f}, "
            f"peak memory: prepare x{row['prepare_memory_growth']:.2f}, training x{row['train_memory_growth']:.2f}"
            for row in rows[1:]
        )
    )
    return {"model": "embedding 64, 1-layer LSTM 64, batch 64", "steps": plan.scale_steps, "sizes": rows}
