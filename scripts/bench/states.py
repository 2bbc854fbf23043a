"""The states users are in: every model, a busy machine, int8 prediction.

    matrix   encoder (rnn, lstm, gru, bag) x pooling (last, mean, max) x direction at the reference size, and the
             lesson's three configs: training tokens/s through the TrainStep `rnnclf train` runs, and the recurrent
             layers' share of this machine's fp32 torch.mm rate; the lesson's packed LSTM also through the lesson
             notebook's pipeline (the ratio)
    busy     `rnnclf train` alone, then two of them at once on the same cores: each one's time against alone
    int8     whole-process `rnnclf predict --input` over 20,000 texts, fp32 and --int8; int8 batched and
             single-text latency in the process

Sections of `python -m scripts.bench` (`--skip matrix busy int8` leaves them out); each returns its figures as a
dict. Each lesson config is timed in a fresh `python -m scripts.bench --lesson-child NAME` process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.config.loading import load_config
from rnnclf.config.schema import Config
from rnnclf.data.builtin import fetch
from rnnclf.data.corpus import load_corpus
from rnnclf.data.readers import read_split
from rnnclf.data.token_cache import prepare
from rnnclf.device.threads import use_cpu_threads
from rnnclf.inference.predictor import Predictor

from .common import ROOT, Plan, bench_command, num, reference_config, say, synchronize
from .flops import matmul_rate, training_flops_per_token
from .pipelines import naive_steps, naive_vocabulary, rnnclf_steps
from .predict import quickstart_run, time_predictor

LESSON_CONFIGS = ("seed_rnn_mean", "seed_lstm_last", "seed_packed_lstm")
SLOW = 1.25  # a cell this much slower than max pooling of the same encoder and direction is flagged


def timed_steps(config: Config, plan: Plan, steps: int, naive: bool = False) -> float:
    """Training tokens/s of `config` over `steps` steps after warm-up (rnnclf's TrainStep, or the notebook's)."""
    if naive:
        corpus = load_corpus(config.data, config.train.seed)
        index = {label: i for i, label in enumerate(corpus.labels)}
        texts = list(corpus.train.texts)
        vocab = naive_vocabulary(texts, config.tokenizer.max_vocab)
        pipeline = naive_steps(config, texts, [index[x] for x in corpus.train.labels], vocab, plan.device)
    else:
        pipeline = rnnclf_steps(config, prepare(config), plan.device)
    for _ in range(2 if plan.quick else 4):
        next(pipeline)
    synchronize(plan.device)
    start, tokens = time.perf_counter(), 0
    for _ in range(steps):
        tokens += next(pipeline)[0]
    synchronize(plan.device)
    return tokens / (time.perf_counter() - start)


def cell_config(base: Config, encoder: str, pooling: str, bidirectional: bool) -> Config:
    model = base.model.model_copy(update={"encoder": encoder, "pooling": pooling, "bidirectional": bidirectional})
    return base.model_copy(update={"model": model})


def share_of_matmul(config: Config, tokens_per_s: float, matmul: float) -> float | None:
    m = config.model
    if m.encoder == "bag":
        return None
    per_token = training_flops_per_token(m.encoder, config.embedding.dim, m.hidden_size, 1 + m.bidirectional)
    return m.num_layers * per_token * tokens_per_s / matmul  # deeper layers read 2 x hidden: a lower bound


def bench_matrix(plan: Plan) -> dict[str, Any]:
    """Every encoder x pooling x direction at the reference size, then the lesson's configs."""
    base = reference_config(plan.dataset, plan.max_length)
    matmul = matmul_rate(plan.mm_size, 3 if plan.quick else 10, 3, plan.device)
    steps = 3 if plan.quick else 15
    cells = [("bag", pooling, False) for pooling in ("mean", "max")]
    cells += [(e, p, d) for e in ("rnn", "lstm", "gru") for d in (True, False) for p in ("last", "mean", "max")]
    rows = []
    for encoder, pooling, bidirectional in cells:
        config = cell_config(base, encoder, pooling, bidirectional)
        speed = timed_steps(config, plan, steps)
        share = share_of_matmul(config, speed, matmul)
        rows.append({"encoder": encoder, "pooling": pooling, "bidirectional": bidirectional, "tokens_per_s": speed})
        rows[-1]["share_of_matmul"] = share
        shown = f"{share:.1%} of torch.mm" if share is not None else "no recurrence"
        direction = "bi" if bidirectional else "uni"
        say(f"{encoder:>4} {direction:>3} {pooling:>4}: {num(speed)} tokens/s ({shown})")
    for row in rows:  # max pooling of the same encoder and direction is the yardstick
        same = [r for r in rows if r["encoder"] == row["encoder"] and r["bidirectional"] == row["bidirectional"]]
        yardstick = next(r["tokens_per_s"] for r in same if r["pooling"] == "max")
        row["max_over_this"] = yardstick / row["tokens_per_s"]
        if row["max_over_this"] > SLOW:
            say(f"slow cell: {row['encoder']} {row['pooling']} {row['max_over_this']:.2f}x below max pooling")
    return {"matmul_flops_per_s": matmul, "steps": steps, "cells": rows, "lesson": bench_lesson(plan, matmul)}


def bench_lesson(plan: Plan, matmul: float) -> list[dict[str, Any]]:
    """The lesson's three configs through rnnclf; the packed LSTM also through the lesson notebook's pipeline.

    Each in a fresh process, as a user's `rnnclf train` runs: these models are so small that a step is mostly
    fixed costs, which grew by a third in this long-lived benchmark process (measured: 208k against 317k tokens/s
    for the packed LSTM). Each is timed over one epoch's worth of steps (R8, batch 16: 309): an epoch takes
    seconds, and a few dozen batches of R8's very uneven lengths would be a noisy sample."""
    rows = []
    for name in LESSON_CONFIGS:
        config = lesson_config(name, plan.quick)
        steps = 3 if plan.quick else -(-len(prepare(config).encoded["train"]) // config.train.batch_size)
        speed = lesson_child(name, plan, steps)
        row = {"config": name, "steps": steps, "tokens_per_s": speed}
        row["share_of_matmul"] = share_of_matmul(config, speed, matmul)
        if name == "seed_packed_lstm":
            row["notebook_tokens_per_s"] = lesson_child(name, plan, steps, naive=True)
            row["ratio"] = speed / row["notebook_tokens_per_s"]
        rows.append(row)
        extra = (
            f"; the notebook's pipeline {num(row['notebook_tokens_per_s'])}: {row['ratio']:.1f}x"
            if "ratio" in row
            else ""
        )
        say(f"{name}: {num(speed)} tokens/s over {steps} steps{extra}")
    return rows


def lesson_config(name: str, quick: bool) -> Config:
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    if quick:
        config = config.model_copy(update={"data": config.data.model_copy(update={"max_length": 64})})
    return config


def lesson_child(name: str, plan: Plan, steps: int, naive: bool = False) -> float:
    """Tokens/s of one lesson config, measured by `python -m scripts.bench --lesson-child NAME` in a fresh process."""
    command = bench_command("--lesson-child", name, "--steps", str(steps), "--threads", str(plan.threads))
    command += ["--quick"] if plan.quick else []
    done = subprocess.run([*command, *(["--notebook"] if naive else [])], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.split()[-1])


def lesson_child_main(name: str, plan: Plan, naive: bool) -> None:
    """In the fresh process of lesson_child: print the tokens/s of lesson config `name` over plan.steps steps."""
    print(timed_steps(lesson_config(name, plan.quick), plan, plan.steps, naive=naive))


def rnnclf_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rnnclf", *args]


def busy_workload(plan: Plan, folder: Path) -> Path:
    """A config that trains for a while alone: 3,000 20NG posts (R8 with --quick), the reference model."""
    data = folder / "busy.jsonl"
    lines = fetch(plan.dataset)["train"].read_text(encoding="utf-8").splitlines()
    rng = np.random.default_rng(0)
    data.write_text("\n".join(lines[i] for i in rng.permutation(len(lines))[: 600 if plan.quick else 3000]) + "\n")
    config = folder / "busy.yaml"
    config.write_text(
        f"data: {{train: busy.jsonl, max_length: {plan.max_length}}}\nembedding: {{dim: 100}}\n"
        "model: {encoder: lstm, hidden_size: 128, pooling: max}\n"
        f"train: {{epochs: {1 if plan.quick else 3}, batch_size: 64}}\n"
    )
    return config


def bench_busy(plan: Plan, folder: Path) -> dict[str, Any]:
    """`rnnclf train` alone, then two at once: each one's wall time against alone (threads chosen by rnnclf)."""
    config = busy_workload(plan, folder)
    prepare(load_config(config))  # the token cache: every run below starts from it

    def run(name: str) -> tuple[float, str]:
        command = rnnclf_command("train", "--config", str(config), "--run-dir", str(folder / name))
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        return time.perf_counter() - start, done.stderr

    alone, _ = run("busy-alone")
    with ThreadPoolExecutor(2) as pool:  # each job timed by its own thread, from its own start to its own end
        together = list(pool.map(run, ["busy-a", "busy-b"]))
    changes = [line for _, err in together for line in err.splitlines() if line.startswith(("threads:", "device:"))]
    out = {"alone_seconds": alone, "together_seconds": [t for t, _ in together], "log": changes}
    out["worst_ratio"] = max(out["together_seconds"]) / alone
    say(
        f"two trainings at once: {', '.join(f'{t:.1f}s' for t in out['together_seconds'])} against {alone:.1f}s alone: "
        f"{out['worst_ratio']:.2f}x (target <= 2.5x)"
    )
    for line in changes:
        say(f"  {line}")
    return out


def prediction_texts(count: int, folder: Path) -> Path:
    """`count` R8 texts (train then test, repeated), one per line: the quickstart model's own domain."""
    files = fetch("r8")
    texts = [*read_split(files["train"]).texts, *read_split(files["test"]).texts]
    path = folder / "predict.txt"
    path.write_text("\n".join(texts[i % len(texts)] for i in range(count)) + "\n", encoding="utf-8")
    return path


def bench_int8(plan: Plan, run_path: Path, folder: Path) -> dict[str, Any]:
    """Whole-process `rnnclf predict --input` over 20,000 texts, fp32 and int8; int8 in-process figures."""
    run_path = quickstart_run(run_path, folder, plan.quick)
    check = subprocess.run(
        rnnclf_command("export", str(run_path), "--quantize", "int8"), capture_output=True, text=True
    )
    if check.returncode:
        raise RuntimeError(check.stderr)
    say(check.stdout.strip())
    count = 1_000 if plan.quick else 20_000
    texts = prediction_texts(count, folder)
    out: dict[str, Any] = {"texts": count, "run": str(run_path)}
    for name, extra in (("fp32", []), ("int8", ["--int8"])):
        best = float("inf")
        for _ in range(1 if plan.quick else 2):
            start = time.perf_counter()
            done = subprocess.run(
                rnnclf_command("predict", str(run_path), "--input", str(texts), "--format", "json", *extra),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            if done.returncode:
                raise RuntimeError(done.stderr)
            best = min(best, time.perf_counter() - start)
        out[f"{name}_process_seconds"] = best
        out[f"{name}_texts_per_s"] = count / best
        say(
            f"rnnclf predict --input ({count:,} texts{', --int8' if extra else ''}), whole process: {num(count / best)} texts/s ({best:.2f}s)"
        )
    out["speedup"] = out["int8_texts_per_s"] / out["fp32_texts_per_s"]
    out |= in_process_int8(plan, run_path)
    return out


def in_process_int8(plan: Plan, run_path: Path) -> dict[str, Any]:
    use_cpu_threads(1)  # as `rnnclf predict`
    predictor = Predictor.load(run_path, "cpu", workers=plan.threads, int8=True)
    texts = list(read_split(fetch("r8")["test"]).texts)[: plan.predict_texts]
    best, latencies = time_predictor(plan, predictor, texts)
    use_cpu_threads(plan.threads)
    median, p99 = np.percentile(latencies, [50, 99])
    say(
        f"int8 in the process: {num(len(texts) / best)} texts/s batched (R8 test texts); "
        f"predict([text]) median {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms over {plan.latency_calls} calls"
    )
    return {"batched_texts_per_s": len(texts) / best, "latency_median_ms": median * 1e3, "latency_p99_ms": p99 * 1e3}
