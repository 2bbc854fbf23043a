"""Speed and scale of rnnclf, measured side by side in one run: figures and ratios, never pass/fail.

    .venv/bin/python scripts/bench.py [--quick] [--threads N] [--steps 60] [--skip SECTION ...] [--out bench.json]

Sections (each can be skipped with --skip NAME):
  reference  training tokens/s of the reference workload (20ng, word tokens, embedding 100, 1-layer
             bidirectional LSTM 128, batch 64, max_length 400) through rnnclf's own pipeline; then the same
             for the quickstart workload (R8, bidirectional GRU 128, batch 32)
  naive      the lesson notebook's pipeline on the same data and model sizes: DataLoader with random batches,
             Python regex tokenizer + dict vocabulary in the collate function, packed nn.LSTM / GRU; the ratios
  flops      the recurrent layers' achieved FLOP/s as a fraction of this machine's fp32 torch.mm rate
  predict    Predictor throughput (texts/s) and single-text latency on the quickstart run
  tokenize   rnnclf.data.tokenizer.encode on 100,000 short documents, next to the naive Python tokenizer
  prepare    a cold prepare() (temporary token cache) against a cached second prepare() on 20ng
  memory     peak resident memory of `rnnclf train` (one epoch of the reference workload) in a subprocess
  scale      a generated corpus of 100k / 300k / 1M short documents: prepare() and a bounded training run,
             each size in its own subprocesses: wall times and peak resident memory
  distributed  `rnnclf train --nproc 1` vs `--nproc 2` (torchrun, gloo) on the quickstart workload, 1 epoch,
             the same cores shared out: tokens/s of all processes together
  matrix, busy, int8  scripts/bench_states.py: every encoder x pooling x direction and the lesson's configs; two
             trainings at once against one alone; whole-process `rnnclf predict --input` fp32 vs --int8

Everything runs on the CPU unless --device cuda: then training (with AMP, as `rnnclf train` does: bf16 where
supported, else fp16 with a gradient scaler), the naive pipeline (fp32, as the notebook), the matmul rates (fp32 and
the AMP dtype) and prediction run on the GPU; tokenize, prepare, memory and scale stay CPU figures (skip them there
if the host's CPU is not the point). These 2-core machines are noisy: run on an idle machine; the load average is
printed at the start and the end. `--quick` shrinks every size so the whole script takes well under a minute
(a smoke test; its figures mean little). Results are printed as they are measured and written as JSON to --out
after every section.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader

import rnnclf
from rnnclf.config.loading import load_config
from rnnclf.config.schema import Config
from rnnclf.data.batching import bucket_by_length, collate, sequential_batches
from rnnclf.data.builtin import cache_dir, fetch
from rnnclf.data.corpus import load_corpus
from rnnclf.data.readers import read_split
from rnnclf.data.token_cache import Prepared, prepare
from rnnclf.data.tokenizer import encode, fit_tokenizer
from rnnclf.device.cores import available_cores
from rnnclf.device.precision import choose_device, choose_precision
from rnnclf.device.threads import use_cpu_threads
from rnnclf.inference.predictor import Predictor
from rnnclf.models.classifier import RNNClassifier, classifier_arguments
from rnnclf.training.losses import class_weight_tensor
from rnnclf.training.step import build_step
from rnnclf.training.trainer import train

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "reference", "naive", "flops", "predict", "tokenize", "prepare", "memory", "scale", "distributed", "matrix", "busy",
    "int8",
)  # fmt: skip
CPU = torch.device("cpu")
TARGETS = {"ratio": 3.0, "predict_texts_per_s": 5_000, "encode_docs_per_s": 50_000, "scale_peak_mib": 2_048}


@dataclass
class Plan:
    """Every size the benchmark uses; --quick shrinks them all."""

    quick: bool
    threads: int
    device: torch.device
    steps: int  # timed training steps per pipeline
    warmup: int
    rounds: int  # the timed steps alternate between the pipelines in this many rounds
    dataset: str  # the reference workload's corpus and max_length
    max_length: int
    mm_size: int
    predict_texts: int | None  # None = all R8 test texts
    latency_calls: int
    docs: int
    prepare_corpus: str
    memory_docs: int | None  # None = the reference workload on 20ng; else a generated corpus of this size
    scale_sizes: list[int]
    scale_steps: int
    nprocs: list[int]


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    return Plan(
        quick=quick,
        threads=args.threads,
        device=choose_device(args.device),
        steps=args.steps or (4 if quick else 60),
        warmup=1 if quick else 5,
        rounds=1 if quick else 3,
        dataset="r8" if quick else "20ng",
        max_length=64 if quick else 400,
        mm_size=512 if quick else 2048,
        predict_texts=100 if quick else None,
        latency_calls=args.latency_calls or (10 if quick else 200),
        docs=args.docs or (2_000 if quick else 100_000),
        prepare_corpus="r8" if quick else "20ng",
        memory_docs=1_000 if quick else None,
        scale_sizes=args.scale_sizes or ([2_000, 5_000] if quick else [100_000, 300_000, 1_000_000]),
        scale_steps=args.scale_steps or (10 if quick else 200),
        nprocs=args.nprocs,
    )


# ---------------------------------------------------------------------------------------------- helpers


def say(text: str = "") -> None:
    print(text, flush=True)


def num(value: float, digits: int = 3) -> str:
    """A figure for people: thousands separators for large numbers, a few significant digits for small ones."""
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def peak_mib(maxrss: int) -> float:
    """ru_maxrss in MiB (kilobytes on Linux, bytes on macOS)."""
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


# Runs argv[2:] and writes [exit code, peak RSS] to argv[1]. A child started straight from this benchmark would
# report at least this process's own peak (Linux carries the peak RSS over fork and exec); started from this small
# launcher, it carries over only the launcher's few MiB.
LAUNCHER = """
import json, os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as handle:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_maxrss], handle)
"""


def run_child(command: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Run a command to completion, output to `log`: (exit code, wall seconds, its peak resident MiB)."""
    result = log.with_suffix(".rusage.json")
    with log.open("w") as handle:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(result), *command], stdout=handle, stderr=subprocess.STDOUT, env=env
        )
        seconds = time.perf_counter() - start
    code, maxrss = json.loads(result.read_text())
    return code, seconds, peak_mib(maxrss)


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def token_cache(folder: Path) -> Iterator[None]:
    """Point RNNCLF_CACHE at `folder` for a while."""
    before = os.environ.get("RNNCLF_CACHE")
    os.environ["RNNCLF_CACHE"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ["RNNCLF_CACHE"]
        else:
            os.environ["RNNCLF_CACHE"] = before


def reference_config(dataset: str = "20ng", max_length: int = 400) -> Config:
    return Config.model_validate(
        {
            "data": {"dataset": dataset, "max_length": max_length},
            "tokenizer": {"kind": "word"},
            "embedding": {"dim": 100},
            "model": {"encoder": "lstm", "hidden_size": 128, "num_layers": 1, "bidirectional": True, "pooling": "max"},
            "train": {"batch_size": 64, "optimizer": "adamw", "lr": 0.002, "grad_clip": 1.0, "seed": 0},
        }
    )


def synchronize(device: torch.device) -> None:
    """Wait for the GPU: its work is asynchronous, so a clock read without this measures only the launches."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# A step generator does one training step per next() and yields (real tokens, padded positions, data seconds).
Steps = Iterator[tuple[int, int, float]]


def rnnclf_steps(config: Config, prepared: Prepared, device: torch.device) -> Steps:
    """rnnclf's pipeline: cached token ids -> length-bucketed batches -> RNNClassifier -> the TrainStep that
    `rnnclf train` runs (its loss, optimizer, schedule, clipping, AMP and scaler on CUDA)."""
    torch.manual_seed(config.train.seed)
    vocab_size, labels = prepared.tokenizer.get_vocab_size(), prepared.labels
    model = RNNClassifier(vocab_size, len(labels), **classifier_arguments(config)).to(device).train()
    encoded, targets = prepared.encoded["train"], prepared.targets["train"]
    weights = class_weight_tensor(config.train.class_weights, labels, targets)
    steps = math.ceil(len(encoded) / config.train.batch_size) * config.train.epochs
    step = build_step(model, model, config.train, weights, steps, device, choose_precision(device, config.train.amp))
    for epoch in itertools.count(1):
        for index in bucket_by_length(encoded.lengths, config.train.batch_size, config.train.seed, epoch):
            start = time.perf_counter()
            batch = collate(encoded, index, targets)  # what rnnclf.data.batching.iterate yields
            data_seconds = time.perf_counter() - start
            step(batch)
            yield batch.num_tokens, batch.ids.numel(), data_seconds


# -------------------------------------------------------------------------- the lesson notebook's pipeline

# torchtext's basic_english, as the notebook used it: lowercase, split off punctuation, split on whitespace
_BASIC_ENGLISH = [
    (re.compile(pattern), replacement)
    for pattern, replacement in [
        (r"\'", " '  "),
        (r"\"", ""),
        (r"\.", " . "),
        (r"<br \/>", " "),
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"\!", " ! "),
        (r"\?", " ? "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\s+", " "),
    ]
]


def basic_english(text: str) -> list[str]:
    text = text.lower()
    for pattern, replacement in _BASIC_ENGLISH:
        text = pattern.sub(replacement, text)
    return text.split()


def naive_vocabulary(texts: list[str], max_size: int) -> dict[str, int]:
    """A Python dict: <pad> 0, <unk> 1, then the most frequent training tokens."""
    counts = Counter(token for text in texts for token in basic_english(text))
    words = ["<pad>", "<unk>"] + [word for word, _ in counts.most_common(max_size - 2)]
    return {word: index for index, word in enumerate(words)}


class NaiveRNN(nn.Module):
    """Embedding -> packed nn.LSTM / nn.GRU -> max over time -> linear; the sizes of the workload's config."""

    def __init__(self, vocab_size: int, num_classes: int, config: Config) -> None:
        super().__init__()
        dim, hidden, directions = config.embedding.dim, config.model.hidden_size, 1 + config.model.bidirectional
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        recurrent = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[config.model.encoder]
        self.lstm = recurrent(dim, hidden, batch_first=True, bidirectional=directions == 2)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(directions * hidden, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        padded, _ = pad_packed_sequence(outputs, batch_first=True, padding_value=float("-inf"))
        return self.head(self.dropout(padded.max(dim=1).values))


def naive_steps(
    config: Config, texts: list[str], targets: list[int], vocab: dict[str, int], device: torch.device
) -> Steps:
    """The notebook's pipeline: raw rows, shuffled DataLoader, tokenizing and padding in collate, no caching.

    Texts are cut to the same max_length as rnnclf's (the notebook had no limit: that would be slower still).
    """
    max_length = config.data.max_length

    def collate_rows(rows: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = [
            torch.tensor([vocab.get(token, 1) for token in basic_english(text)[:max_length]] or [1]) for text, _ in rows
        ]
        lengths = torch.tensor([len(row) for row in ids])
        return pad_sequence(ids, batch_first=True, padding_value=0), lengths, torch.tensor([label for _, label in rows])

    torch.manual_seed(config.train.seed)
    rows = list(zip(texts, targets, strict=True))
    loader = DataLoader(rows, batch_size=config.train.batch_size, shuffle=True, collate_fn=collate_rows)
    model = NaiveRNN(len(vocab), max(targets) + 1, config)
    model.to(device).train()  # fp32 on any device, as the notebook
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    while True:
        batches = iter(loader)
        while True:
            start = time.perf_counter()
            batch = next(batches, None)
            data_seconds = time.perf_counter() - start
            if batch is None:
                break
            ids, lengths, labels = batch
            loss = nn.functional.cross_entropy(model(ids.to(device), lengths), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            yield int(lengths.sum()), ids.numel(), data_seconds


# ------------------------------------------------------------------------------------------- sections


def machine_info(plan: Plan) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores_available": available_cores(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "rnnclf": rnnclf.__version__,
        "threads": plan.threads,
        "torch_num_threads": torch.get_num_threads(),
        "load_average_start": list(os.getloadavg()),
        "quick": plan.quick,
        "command": [Path(sys.executable).name, *sys.argv],
    }
    say(f"machine: {info['platform']}, {info['cpu']} ({info['cpu_capability']})")
    say(
        f"cores available {info['cores_available']} (cpu_count {info['cpu_count']}), "
        f"torch {info['torch']} with {info['torch_num_threads']} threads, tokenizers {info['tokenizers']}, "
        f"rnnclf {info['rnnclf']}"
    )
    load = ", ".join(f"{x:.2f}" for x in info["load_average_start"])
    say(f"load average: {load}  (figures on a busy machine are low and noisy)")
    if plan.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(plan.device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        info["amp_dtype"] = choose_precision(plan.device, True).describe()
        say(f"device: {info['gpu']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, AMP {info['amp_dtype']}")
    if plan.quick:
        say("--quick: tiny sizes; a smoke test, not a measurement")
    return info


def quickstart_config(plan: Plan) -> Config:
    """configs/quickstart.yaml (R8, bidirectional GRU 128, batch 32) with a learned embedding: GloVe only sets
    the starting values, not the speed."""
    config = load_config(ROOT / "configs" / "quickstart.yaml", ["embedding.pretrained=null"])
    return config.model_copy(update={"data": config.data.model_copy(update={"max_length": plan.max_length})})


def describe(config: Config) -> str:
    m = config.model
    return (
        f"{config.data.dataset}, {config.tokenizer.kind} tokens, max_length {config.data.max_length}, embedding "
        f"{config.embedding.dim}, {m.num_layers}-layer {'bidirectional ' if m.bidirectional else ''}"
        f"{m.encoder.upper()} {m.hidden_size}, {m.pooling} pooling, batch {config.train.batch_size}, "
        f"{config.train.optimizer}; throughput = non-pad tokens / s of batching + forward + backward + optimizer step"
    )


def bench_training(plan: Plan, run_reference: bool, run_naive: bool, config: Config | None = None) -> dict[str, Any]:
    """Sections 1 and 2: the same workload through rnnclf's pipeline and the notebook's, steps alternating.

    The reference workload by default; the quickstart's with `config`."""
    config = config or reference_config(plan.dataset, plan.max_length)
    pipelines: dict[str, Steps] = {}
    out: dict[str, Any] = {
        "workload": describe(config),
        "encoder": config.model.encoder,
        "embedding_dim": config.embedding.dim,
        "hidden_size": config.model.hidden_size,
        "directions": 1 + config.model.bidirectional,
        "steps": plan.steps,
        "warmup_steps": plan.warmup,
        "rounds": plan.rounds,
    }
    if run_reference:
        start = time.perf_counter()
        prepared = prepare(config)
        say(
            f"rnnclf: prepare() {'from the cache' if prepared.cached else 'tokenized'} in {time.perf_counter() - start:.1f}s"
        )
        pipelines["rnnclf"] = rnnclf_steps(config, prepared, plan.device)
    if run_naive:
        corpus = load_corpus(config.data, config.train.seed)  # the same training split rnnclf trains on
        index = {label: i for i, label in enumerate(corpus.labels)}
        texts = list(corpus.train.texts)  # read from the file into a list, as the notebook holds them
        start = time.perf_counter()
        vocab = naive_vocabulary(texts, config.tokenizer.max_vocab)
        out["naive_vocab_seconds"] = time.perf_counter() - start
        say(f"naive: vocabulary of {len(vocab):,} built in {out['naive_vocab_seconds']:.1f}s (not in the throughput)")
        pipelines["naive"] = naive_steps(config, texts, [index[x] for x in corpus.train.labels], vocab, plan.device)

    for name, steps in pipelines.items():
        start = time.perf_counter()
        for _ in range(plan.warmup):
            next(steps)
        synchronize(plan.device)
        say(f"{name}: {plan.warmup} warm-up steps in {time.perf_counter() - start:.1f}s")

    totals = {
        name: {"seconds": 0.0, "data_seconds": 0.0, "tokens": 0, "positions": 0, "steps": 0} for name in pipelines
    }
    per_round = [plan.steps // plan.rounds + (r < plan.steps % plan.rounds) for r in range(plan.rounds)]
    for round_number, count in enumerate(per_round, start=1):
        shown = []
        for name, steps in pipelines.items():
            total = totals[name]
            start, tokens = time.perf_counter(), 0
            for _ in range(count):
                real, positions, data_seconds = next(steps)
                tokens += real
                total["positions"] += positions
                total["data_seconds"] += data_seconds
            synchronize(plan.device)
            seconds = time.perf_counter() - start
            total["seconds"] += seconds
            total["tokens"] += tokens
            total["steps"] += count
            shown.append(f"{name} {num(tokens / seconds)} tok/s")
        say(f"round {round_number}/{plan.rounds} ({count} steps each): " + ", ".join(shown))

    for name, total in totals.items():
        figures = {
            **total,
            "tokens_per_s": total["tokens"] / total["seconds"],
            "seconds_per_step": total["seconds"] / total["steps"],
            "padding_share": 1 - total["tokens"] / total["positions"],
            "data_share": total["data_seconds"] / total["seconds"],
        }
        out[name] = figures
        say(
            f"{name}: {num(figures['tokens_per_s'])} tokens/s ({figures['seconds_per_step']:.3f} s/step, "
            f"{total['tokens'] / total['steps']:,.0f} tokens/step, padding {figures['padding_share']:.1%} of positions, "
            f"batching/tokenizing {figures['data_share']:.1%} of the time)"
        )
    if plan.device.type == "cuda":
        out["gpu_peak_memory_mib"] = torch.cuda.max_memory_allocated(plan.device) / 2**20
        say(f"GPU memory: peak {out['gpu_peak_memory_mib']:,.0f} MiB allocated by both pipelines")
    if "rnnclf" in out and "naive" in out:
        out["ratio"] = out["rnnclf"]["tokens_per_s"] / out["naive"]["tokens_per_s"]
        say(f"rnnclf / naive: {out['ratio']:.2f}x  (target >= {TARGETS['ratio']:.0f}x)")
    return out


def matmul_rate(
    size: int, repeats: int, trials: int, device: torch.device = CPU, dtype: torch.dtype = torch.float32
) -> float:
    """FLOP/s of torch.mm on size x size matrices (random, never zeros), best of `trials`."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty(size, size, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(trials):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b, out=out)
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def training_flops_per_token(encoder: str, input_size: int, hidden: int, directions: int) -> float:
    """Forward: 2 * gates * hidden * (input + hidden) per token and direction; backward ~2x: x3 for a step."""
    return 3 * directions * 2 * GATES[encoder] * hidden * (input_size + hidden)


def bench_flops(plan: Plan, workloads: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """Section 3: the recurrent layers' achieved FLOP/s against this machine's big-matmul rate."""
    repeats, trials = (3, 3) if plan.quick else (5, 5)
    device = plan.device
    size = plan.mm_size * (4 if device.type == "cuda" else 1)  # a GPU needs a bigger product to fill it
    peak = matmul_rate(size, repeats * (10 if device.type == "cuda" else 1), trials, device)
    out: dict[str, Any] = {"device": str(device), "matmul_size": size, "matmul_flops_per_s": peak}
    say(f"fp32 torch.mm {size}x{size} on {device}: {peak / 1e9:,.1f} GFLOP/s (best of {trials})")
    dtype = choose_precision(device, True).autocast
    if dtype is not None:  # training runs under autocast: its matrix products run in this dtype
        peak = matmul_rate(size, repeats * 10, trials, device, dtype)
        out |= {"amp_dtype": str(dtype), "amp_matmul_flops_per_s": peak}
        say(f"{dtype} torch.mm {size}x{size}: {peak / 1e9:,.1f} GFLOP/s: the rate the fractions below are of")
    # the recurrent part of an LSTM step: (batch 64 x hidden 128) @ (128 x 4 * 128) -- small, hard to run fast
    a, b = torch.randn(64, 128, device=device), torch.randn(128, 512, device=device)
    synchronize(device)
    start, calls = time.perf_counter(), 2000 if not plan.quick else 200
    for _ in range(calls):
        torch.mm(a, b)
    synchronize(device)
    small = 2 * 64 * 128 * 512 * calls / (time.perf_counter() - start)
    out["small_matmul_flops_per_s"] = small
    say(f"fp32 torch.mm 64x128 @ 128x512 (one LSTM time step's recurrent product): {small / 1e9:.1f} GFLOP/s")
    if not any(workload and "rnnclf" in workload for workload in workloads.values()):
        say("(no training throughput measured: --skip reference; only the matmul rate)")
    for workload_name, training in workloads.items():
        if not training or "rnnclf" not in training:
            continue
        per_token = training_flops_per_token(
            training["encoder"], training["embedding_dim"], training["hidden_size"], training["directions"]
        )
        # the reference workload's figures at the top level, the quickstart's under "quickstart"
        figures = out if workload_name == "reference" else out.setdefault(workload_name, {})
        for name in ("rnnclf", "naive"):
            if name not in training:
                continue
            rate = training[name]["tokens_per_s"] * per_token
            # rnnclf trains under AMP on CUDA, the naive pipeline in fp32: each against its own dtype's rate
            limit = peak if name == "rnnclf" else out["matmul_flops_per_s"]
            figures[name] = {"flops_per_token": per_token, "flops_per_s": rate, "fraction_of_matmul": rate / limit}
            say(
                f"{workload_name}, {name}: recurrent layers {rate / 1e9:.2f} GFLOP/s on real tokens "
                f"({per_token / 1e6:.2f} MFLOP per token per training step) = {rate / limit:.1%} of the torch.mm rate"
            )
    return out


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


def short_documents(texts: list[str], count: int, seed: int = 0) -> list[str]:
    """`count` documents of 10-20 consecutive words taken from random places in `texts`."""
    rng = np.random.default_rng(seed)
    word_lists = [words for words in (text.split() for text in texts) if len(words) >= 20]
    docs = []
    for choice, size in zip(rng.integers(0, len(word_lists), count), rng.integers(10, 21, count), strict=True):
        words = word_lists[choice]
        start = int(rng.integers(0, len(words) - size + 1))
        docs.append(" ".join(words[start : start + size]))
    return docs


def bench_tokenize(plan: Plan) -> dict[str, Any]:
    """Section 5a: rnnclf.data.tokenizer.encode on many short documents, next to basic_english + a dict lookup."""
    train_texts = read_split(fetch("r8")["train"]).texts
    tokenizer = fit_tokenizer(train_texts, 400, kind="word")
    docs = short_documents(train_texts, plan.docs)
    encode(tokenizer, docs[:1000])  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        encoded = encode(tokenizer, docs)
        best = min(best, time.perf_counter() - start)
    tokens = int(encoded.lengths.sum())
    out: dict[str, Any] = {
        "docs": len(docs),
        "tokens": tokens,
        "vocab_size": tokenizer.get_vocab_size(),
        "encode_seconds": best,
        "encode_docs_per_s": len(docs) / best,
        "encode_tokens_per_s": tokens / best,
    }
    say(
        f"encode: {num(out['encode_docs_per_s'])} docs/s, {num(out['encode_tokens_per_s'])} tokens/s "
        f"({len(docs):,} R8 snippets of 10-20 words, best of 3; target >= {TARGETS['encode_docs_per_s']:,} docs/s)"
    )
    vocab = naive_vocabulary(train_texts, 50_000)
    start = time.perf_counter()
    for doc in docs:
        [vocab.get(token, 1) for token in basic_english(doc)]
    seconds = time.perf_counter() - start
    out["naive_docs_per_s"] = len(docs) / seconds
    out["encode_vs_naive"] = out["encode_docs_per_s"] / out["naive_docs_per_s"]
    say(
        f"naive basic_english + dict: {num(out['naive_docs_per_s'])} docs/s; "
        f"encode / naive: {out['encode_vs_naive']:.2f}x"
    )
    return out


def bench_prepare(plan: Plan, folder: Path) -> dict[str, Any]:
    """Section 5b: a cold prepare() (empty token cache) against the cached second one.

    The token cache lives under RNNCLF_CACHE, next to the corpora: a temporary RNNCLF_CACHE holding a link to
    the already-converted corpus makes the token cache empty without fetching the corpus again.
    """
    name = plan.prepare_corpus
    fetch(name)  # converted once in the normal cache
    cache = folder / "prepare-cache"
    cache.mkdir()
    (cache / name).symlink_to(cache_dir() / name, target_is_directory=True)
    config = reference_config(name)
    with token_cache(cache):
        start = time.perf_counter()
        cold = prepare(config)
        cold_seconds = time.perf_counter() - start
        start = time.perf_counter()
        warm = prepare(config)
        warm_seconds = time.perf_counter() - start
    if cold.cached or not warm.cached:
        raise RuntimeError(f"expected a cold then a cached prepare(), got cached={cold.cached}, {warm.cached}")
    docs = sum(len(encoded) for encoded in cold.encoded.values())
    tokens = sum(int(encoded.lengths.sum()) for encoded in cold.encoded.values())
    out = {
        "corpus": name,
        "docs": docs,
        "tokens": tokens,
        "cold_seconds": cold_seconds,
        "cached_seconds": warm_seconds,
        "cold_vs_cached": cold_seconds / warm_seconds,
    }
    say(
        f"prepare() on {name} ({docs:,} texts, {tokens:,} tokens): cold {cold_seconds:.2f}s "
        f"(read, split, fit tokenizer, encode, save), cached {warm_seconds:.3f}s: {out['cold_vs_cached']:.0f}x"
    )
    return out


def bench_memory(plan: Plan, folder: Path) -> dict[str, Any]:
    """Section 6: peak resident memory of `rnnclf train` in a subprocess, and of a bare `import rnnclf.training.trainer`."""
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
    _, _, baseline = run_child([sys.executable, "-c", "import rnnclf.training.trainer"], folder / "baseline.log")
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


def bench_distributed(plan: Plan, folder: Path) -> dict[str, Any]:
    """Section 8: `rnnclf train --nproc N` for N = 1 and 2 on the quickstart workload (one epoch): the same cores
    shared out, 2 threads in one process or 1 thread in each of two. Throughput = all processes' tokens / s."""
    config = quickstart_config(plan).model_dump(mode="json")
    config["train"] |= {"epochs": 1, "device": "cpu"}
    if plan.quick:
        config["embedding"]["dim"], config["model"]["hidden_size"] = 16, 16
    config_path = folder / "distributed.json"  # JSON is YAML
    config_path.write_text(json.dumps(config))
    out: dict[str, Any] = {"workload": describe(Config.model_validate(config)) + ", 1 epoch", "runs": []}
    for nproc in plan.nprocs:
        threads = max(1, plan.threads // nproc)
        run_dir = folder / f"distributed-{nproc}"
        command = [sys.executable, "-m", "rnnclf", "train", "--config", str(config_path), "--run-dir", str(run_dir)]
        command += ["--nproc", str(nproc), "--set", f"train.num_threads={threads}"]
        log = folder / f"distributed-{nproc}.log"
        code, seconds, _ = run_child(command, log)
        if code != 0:
            raise RuntimeError(f"rnnclf train --nproc {nproc} failed ({code}):\n{tail(log)}")
        epoch = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        row = {
            "processes": nproc,
            "threads_each": threads,
            "tokens_per_s": epoch["tokens_per_s"],
            "epoch_seconds": epoch["epoch_seconds"],
            "optimizer_steps": epoch["step"],
            "process_seconds": seconds,
            "test_accuracy": (metrics["test"] or metrics["valid"])["accuracy"],
        }
        out["runs"].append(row)
        say(
            f"--nproc {nproc} ({threads} thread{'s' if threads > 1 else ''} each): {num(row['tokens_per_s'])} tokens/s, "
            f"epoch {row['epoch_seconds']:.1f}s in {row['optimizer_steps']} optimizer steps, test accuracy "
            f"{row['test_accuracy']:.4f}; {seconds:.1f}s with start-up"
        )
    first = out["runs"][0]
    for row in out["runs"][1:]:
        row["speedup"] = row["tokens_per_s"] / first["tokens_per_s"]
        say(
            f"{row['processes']} processes / {first['processes']}: {row['speedup']:.2f}x tokens/s "
            f"on {plan.threads} cores"
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
            command = [sys.executable, __file__, "--scale-child", str(files[size]), "--scale-steps", str(steps)]
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


# ----------------------------------------------------------------------------------------------- summary


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, value / target) for the final table."""
    rows: list[tuple[str, str, str, str]] = []
    measured = {name: value for name, value in results.items() if isinstance(value, dict) and "error" not in value}

    def add(figure: str, value: str, target: str = "", versus: str = "") -> None:
        rows.append((figure, value, target, versus))

    for section, label in (("training", "reference"), ("training_quickstart", "quickstart")):
        training = measured.get(section, {})
        for name in ("rnnclf", "naive"):
            if name in training:
                add(f"{label}: training tokens/s, {name}", num(training[name]["tokens_per_s"]))
        if "ratio" in training:
            add(
                f"{label}: rnnclf / naive",
                f"{training['ratio']:.2f}x",
                f">= {TARGETS['ratio']:.0f}x" if label == "reference" else "",
                f"{training['ratio'] / TARGETS['ratio']:.2f}" if label == "reference" else "",
            )
    flops = measured.get("flops", {})
    if "matmul_flops_per_s" in flops:
        add(f"fp32 torch.mm {flops['matmul_size']}", f"{flops['matmul_flops_per_s'] / 1e9:,.1f} GFLOP/s")
    if "amp_matmul_flops_per_s" in flops:
        add(f"{flops['amp_dtype']} torch.mm", f"{flops['amp_matmul_flops_per_s'] / 1e9:,.1f} GFLOP/s")
    for label, figures in (("reference (LSTM)", flops), ("quickstart (GRU)", flops.get("quickstart", {}))):
        if "rnnclf" in figures:
            add(f"{label}: recurrent FLOP/s, rnnclf", f"{figures['rnnclf']['flops_per_s'] / 1e9:,.2f} GFLOP/s")
            add("  as a fraction of torch.mm", f"{figures['rnnclf']['fraction_of_matmul']:.1%}")
    predict = measured.get("predict", {})
    if predict:
        target = TARGETS["predict_texts_per_s"]
        add(
            "predict texts/s (batched)",
            num(predict["texts_per_s"]),
            f">= {target:,}",
            f"{predict['texts_per_s'] / target:.2f}",
        )
        add("predict([text]) median / p99", f"{predict['latency_median_ms']:.2f} / {predict['latency_p99_ms']:.2f} ms")
    tokenize = measured.get("tokenize", {})
    if tokenize:
        target = TARGETS["encode_docs_per_s"]
        add(
            "encode docs/s",
            num(tokenize["encode_docs_per_s"]),
            f">= {target:,}",
            f"{tokenize['encode_docs_per_s'] / target:.2f}",
        )
        add("encode / naive tokenizer", f"{tokenize['encode_vs_naive']:.2f}x")
    prep = measured.get("prepare", {})
    if prep:
        add(f"prepare() {prep['corpus']} cold / cached", f"{prep['cold_seconds']:.2f}s / {prep['cached_seconds']:.3f}s")
    memory = measured.get("memory", {})
    if memory:
        add(
            "training peak RSS",
            f"{memory['peak_mib']:,.0f} MiB",
            "",
            f"(import alone {memory['import_baseline_mib']:,.0f})",
        )
    distributed = measured.get("distributed", {})
    for row in distributed.get("runs", []):
        speedup = f" ({row['speedup']:.2f}x)" if "speedup" in row else ""
        add(f"train --nproc {row['processes']}, tokens/s", num(row["tokens_per_s"]) + speedup)
    for row in measured.get("scale", {}).get("sizes", []):
        target = TARGETS["scale_peak_mib"]
        add(
            f"scale {row['docs']:,} docs: prepare / train; peaks",
            f"{row['tokenize_seconds']:.1f}s / {row['train_seconds']:.1f}s; "
            f"{row['prepare_peak_mib']:,.0f} / {row['train_peak_mib']:,.0f} MiB",
            f"< {target:,} MiB",
            f"{row['peak_mib'] / target:.2f}",
        )
    return rows


def print_summary(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("figure", "value", "target", "value / target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    say()
    say("summary")
    for row in [header, *rows]:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes everywhere: a smoke test in well under a minute"
    )
    parser.add_argument(
        "--threads", type=int, default=available_cores(), help="torch CPU threads (default: cores available)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="where to train and predict")
    parser.add_argument("--steps", type=int, help="timed training steps per pipeline (default 60; quick 4)")
    parser.add_argument("--latency-calls", type=int, help="predict([text]) calls (default 200; quick 10)")
    parser.add_argument("--docs", type=int, help="short documents to tokenize (default 100,000; quick 2,000)")
    parser.add_argument("--scale-sizes", type=int, nargs="+", help="corpus sizes (default 100000 300000 1000000)")
    parser.add_argument("--scale-steps", type=int, help="training steps per scale size (default 200; quick 10)")
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2], help="process counts (default 1 2)")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "quickstart", help="run directory to predict with")
    parser.add_argument("--skip", nargs="+", default=[], choices=SECTIONS, metavar="SECTION", help=", ".join(SECTIONS))
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON results (default bench.json)")
    parser.add_argument("--scale-child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_cpu_threads(args.threads)
    plan = make_plan(args)
    if args.scale_child is not None:
        scale_child(args.scale_child, plan.scale_steps, plan.threads)
        return 0

    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine_info(plan)}
    failed = []

    def section(name: str, function: Any, *arguments: Any) -> None:
        say(f"\n== {name}")
        start = time.perf_counter()
        try:
            results[name] = function(*arguments)
        except Exception:
            failed.append(name)
            results[name] = {"error": traceback.format_exc()}
            say(traceback.format_exc().rstrip())
        say(f"({name}: {time.perf_counter() - start:.1f}s)")
        args.out.write_text(json.dumps(results, indent=2) + "\n")

    skip = set(args.skip)
    with tempfile.TemporaryDirectory(prefix="rnnclf-bench-") as temp:
        folder = Path(temp)
        if not {"reference", "naive"} <= skip:
            section("training", bench_training, plan, "reference" not in skip, "naive" not in skip)
            section(
                "training_quickstart",
                bench_training,
                plan,
                "reference" not in skip,
                "naive" not in skip,
                quickstart_config(plan),
            )
        if "flops" not in skip:
            workloads = {"reference": results.get("training"), "quickstart": results.get("training_quickstart")}
            section("flops", bench_flops, plan, workloads)
        for name, function, extra in [
            ("predict", bench_predict, (args.run, folder)),
            ("tokenize", bench_tokenize, ()),
            ("prepare", bench_prepare, (folder,)),
            ("memory", bench_memory, (folder,)),
            ("scale", bench_scale, (folder,)),
            ("distributed", bench_distributed, (folder,)),
        ]:
            if name not in skip:
                section(name, function, plan, *extra)
        import bench_states  # the states users are in: every model, a busy machine, int8 (issue 12)

        for name, function, extra in [
            ("matrix", bench_states.bench_matrix, ()),
            ("busy", bench_states.bench_busy, (folder,)),
            ("int8", bench_states.bench_int8, (args.run, folder)),
        ]:
            if name not in skip:
                section(name, function, plan, *extra)

    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["machine"]["total_seconds"] = time.perf_counter() - started
    rows = summary_rows(results) + bench_states.summary_rows(results)
    results["summary"] = [dict(zip(("figure", "value", "target", "value_vs_target"), row, strict=True)) for row in rows]
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(rows)
    load = ", ".join(f"{x:.2f}" for x in results["machine"]["load_average_end"])
    say(
        f"\n{plan.threads} torch threads; load average at the end: {load}; total {results['machine']['total_seconds']:.0f}s"
    )
    say(f"results written to {args.out}")
    if failed:
        say(f"failed sections: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
