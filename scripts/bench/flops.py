"""Section flops: the recurrent layers' achieved FLOP/s as a fraction of this machine's torch.mm rate."""

from __future__ import annotations

import time
from typing import Any

import torch

from rnnclf.device.precision import choose_precision

from .common import CPU, Plan, say, synchronize


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
