"""CPU threads: set once per command, flushing subnormal floats; and training's governor of them.

Threads are a process-wide torch setting: each command sets them once, at its start (`use_cpu_threads`),
and nothing changes them per call afterwards (concurrent requests in `serve` would race on them). The one
exception is training's `ThreadGovernor`, which follows what other processes leave free, from the training
loop's own thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from rnnclf.device.cores import OtherLoad, threads_for

FLUSHING = {"denormals": False}  # what use_cpu_threads managed, for env.json


def use_cpu_threads(count: int) -> int:
    """torch's CPU threads for this process, and subnormal floats flushed to zero. Call once, when a command
    starts, before any computation: OpenMP's threads are made then, and inherit the calling thread's
    floating-point mode.

    Flushing matters to recurrent models: a gradient that fades through hundreds of steps (pooling `last`)
    becomes subnormal, and x86 CPUs compute on subnormal numbers many times slower (python -m scripts.bench).
    """
    torch.set_num_threads(count)
    FLUSHING["denormals"] = flush_denormals()
    return count


def flush_denormals() -> bool:
    """Flush subnormal floats to zero in the calling thread and the threads it makes later (x86: FTZ and DAZ).
    False where the CPU cannot."""
    return torch.set_flush_denormal(True)


class ThreadGovernor:
    """Training's CPU threads, fitted to the cores that other processes leave free, and re-fitted every
    CHECK_SECONDS: with two jobs on two cores, each takes one thread instead of both spinning on two (20x
    slower); when the other job ends, the threads come back. A thread count the user set stays fixed."""

    CHECK_SECONDS = 1.0

    def __init__(self, cores: int, fixed: int | None, log: Callable[[str], None], why_fixed: str = "") -> None:
        self.cores, self.fixed, self.log = cores, fixed, log
        self.why_fixed = why_fixed or "train.num_threads"
        self.load = OtherLoad()
        self.threads = fixed or cores
        self.last_check = time.monotonic()
        self.rising = 0  # checks in a row that would add threads: more only after two, fewer at once
        self.changes: list[dict[str, float]] = []  # env.json's thread_changes: float results depend on the count

    def start(self) -> tuple[int, str]:
        """The first choice (waits for a short sample of the machine when too little time has passed)."""
        if self.fixed:
            return use_cpu_threads(self.fixed), self.why_fixed
        time.sleep(max(0.0, 0.2 - (time.monotonic() - self.last_check)))
        others = self.load.measure()
        self.last_check = time.monotonic()
        self.threads = use_cpu_threads(threads_for(self.cores, others))
        return self.threads, self.why(others)

    def why(self, others: float | None) -> str:
        if others is None:
            return f"{self.cores} cores available"
        return f"{self.cores} cores available, other processes use {others:.1f}"

    def check(self, step: int = 0) -> None:
        """Call once per step; acts every CHECK_SECONDS."""
        now = time.monotonic()
        if self.fixed or now - self.last_check < self.CHECK_SECONDS:
            return
        self.last_check = now
        others = self.load.measure()
        wanted = threads_for(self.cores, others)
        self.rising = self.rising + 1 if wanted > self.threads else 0
        if wanted < self.threads or self.rising >= 2:
            self.log(f"threads: {self.threads} -> {wanted} ({self.why(others)})")
            self.threads = use_cpu_threads(wanted)
            self.changes.append({"step": step, "threads": wanted, "other_processes_cores": round(others or 0.0, 2)})
            self.rising = 0
