"""What every section shares: the plan (every size, --quick shrinks them), the workloads' configs, printing,
timing, the machine's description and the helpers that run a command in a subprocess."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
import torch

import rnnclf
from rnnclf.config.loading import load_config
from rnnclf.config.schema import Config
from rnnclf.device.cores import available_cores
from rnnclf.device.precision import choose_device, choose_precision

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "reference", "naive", "flops", "predict", "tokenize", "prepare", "memory", "scale", "distributed", "matrix", "busy",
    "int8", "wide", "linear",
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


def bench_command(*arguments: str) -> list[str]:
    """This benchmark in a fresh process, found as this one was: from the working directory or PYTHONPATH."""
    return [sys.executable, "-m", "scripts.bench", *arguments]


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


def synchronize(device: torch.device) -> None:
    """Wait for the GPU: its work is asynchronous, so a clock read without this measures only the launches."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
