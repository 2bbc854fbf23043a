"""Section predict: Predictor throughput (texts/s) and single-text latency on the quickstart run (or on a tiny
R8 model trained here when the run does not exist)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.config.schema import Config
from rnnclf.data.batching import sequential_batches
from rnnclf.data.builtin import fetch
from rnnclf.data.readers import read_split
from rnnclf.data.tokenizer import encode
from rnnclf.device.threads import use_cpu_threads
from rnnclf.inference.predictor import Predictor
from rnnclf.recipes.classify import train

from .common import TARGETS, Plan, num, say


def quickstart_run(path: Path, folder: Path, quick: bool) -> Path:
    """The run to predict with: `path` if it exists, else a tiny R8 model trained for one epoch."""
    if (path / "model.safetensors").is_file():
        return path
    if (folder / "quickstart" / "model.safetensors").is_file():  # trained by an earlier section
        return folder / "quickstart"
    say(f"{path} has no model; training a tiny R8 model for one epoch")
    config = Config.model_validate(
        {
            "data": {"dataset": "r8", "max_length": 64 if quick else 400},
            "embedding": {"dim": 32 if quick else 50},
            "model": {"encoder": "gru", "hidden_size": 32 if quick else 128},
            "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
            "output": {"run_dir": str(folder / "quickstart")},
        }
    )
    start = time.perf_counter()
    train(config, log=lambda message: None)
    say(f"trained in {time.perf_counter() - start:.1f}s")
    return folder / "quickstart"


def bench_predict(plan: Plan, run_path: Path, folder: Path) -> dict[str, Any]:
    """Section 4: batched throughput and single-text latency of Predictor."""
    run_path = quickstart_run(run_path, folder, plan.quick)
    use_cpu_threads(1)  # as `rnnclf predict` and `rnnclf eval` run: one torch thread per worker, a worker per core
    predictor = Predictor.load(run_path, device=plan.device.type, workers=plan.threads)
    texts = read_split(fetch("r8")["test"]).texts[: plan.predict_texts]
    lengths = encode(predictor.tokenizer, texts).lengths
    tokens = int(lengths.sum())
    # Predictor sorts texts by length into batches of batch_size and runs each padded to its longest text
    positions = sum(
        len(batch) * int(lengths[batch].max()) for batch in sequential_batches(lengths, predictor.batch_size)
    )
    best, latencies = time_predictor(plan, predictor, texts)
    out: dict[str, Any] = {
        "run": str(run_path),
        "device": str(plan.device),
        "model": f"{predictor.run.config.model.encoder}, hidden {predictor.run.config.model.hidden_size}, "
        f"embedding {predictor.run.config.embedding.dim}",
        "texts": len(texts),
        "tokens": tokens,
        "batch_size": predictor.batch_size,
        "padding_share": 1 - tokens / positions,
        "texts_per_s": len(texts) / best,
        "tokens_per_s": tokens / best,
    }
    say(
        f"predict: {num(out['texts_per_s'])} texts/s, {num(out['tokens_per_s'])} tokens/s "
        f"({len(texts):,} R8 test texts, {tokens / len(texts):.0f} tokens each, batches of {predictor.batch_size} "
        f"with {out['padding_share']:.0%} padding; best of runs; target >= {TARGETS['predict_texts_per_s']:,})"
    )
    median, p99 = np.percentile(latencies, [50, 99])
    out |= {"latency_calls": plan.latency_calls, "latency_median_ms": median * 1e3, "latency_p99_ms": p99 * 1e3}
    say(f"predict([text]): median {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms over {plan.latency_calls} calls")
    use_cpu_threads(plan.threads)
    return out


def time_predictor(plan: Plan, predictor: Predictor, texts: list[str]) -> tuple[float, list[float]]:
    """Best seconds for predict(texts) after a warm-up, and the seconds of plan.latency_calls single texts."""
    predictor.predict(texts[:64])
    best = float("inf")
    for _ in range(2 if plan.quick else 3):
        start = time.perf_counter()
        predictor.predict(texts)
        best = min(best, time.perf_counter() - start)
    latencies = []
    for i in range(plan.latency_calls):
        start = time.perf_counter()
        predictor.predict([texts[i % len(texts)]])
        latencies.append(time.perf_counter() - start)
    return best, latencies
