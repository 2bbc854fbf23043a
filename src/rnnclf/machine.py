"""What the machine has free: cores available to this process, and how many of them other processes use.

Imports no torch: the CLI asks before torch (and its OpenMP runtime, which reads OMP_WAIT_POLICY once, when it
loads) is imported. Linux's /proc/stat gives the whole machine's busy time; this process's own CPU time is
subtracted, so a check during training sees only the others.
"""

from __future__ import annotations

import os
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BUSY_SHARE = 0.5  # other processes using at least half a core take that core away
SPIN_SHARE = 0.25  # ... and from a quarter of a core on, OpenMP threads should not spin while they wait


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _machine_seconds() -> tuple[float, float] | None:
    """(busy, all) CPU seconds of the whole machine since boot, summed over its cores; None without /proc."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


class OtherLoad:
    """How many cores other processes kept busy between two calls of `measure` (this process excluded)."""

    def __init__(self) -> None:
        self.last = _machine_seconds(), _own_seconds(), time.monotonic()

    def measure(self) -> float | None:
        machine, own, now = _machine_seconds(), _own_seconds(), time.monotonic()
        (last_machine, last_own, last_now), self.last = self.last, (machine, own, now)
        if machine is None or last_machine is None or now - last_now <= 0:
            return None
        busy = (machine[0] - last_machine[0]) - (own - last_own)
        cores = os.cpu_count() or 1  # /proc/stat counts every core of the machine
        return max(0.0, min(float(cores), busy / (now - last_now)))


def sample_other_load(seconds: float = 0.2) -> float | None:
    """Cores other processes use now, sampled over `seconds` (None where /proc/stat cannot be read)."""
    load = OtherLoad()
    time.sleep(seconds)
    return load.measure()


def threads_for(cores: int, others: float | None) -> int:
    """Threads that fit on the cores other processes leave free (at least one)."""
    if others is None:
        return cores
    return max(1, min(cores, cores - int(others + 1 - BUSY_SHARE)))


def prefer_passive_waiting(sample_seconds: float = 0.2) -> str | None:
    """Before torch is imported: on a machine where others already use CPU, make OpenMP threads sleep instead of
    spin while they wait (OMP_WAIT_POLICY=PASSIVE; a spinning thread steals the core another process needs).
    Returns why, for the log; None when the machine is idle or the user chose a policy."""
    if "OMP_WAIT_POLICY" in os.environ:
        return None
    others = sample_other_load(sample_seconds)
    if others is None or others < SPIN_SHARE:
        return None
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return f"other processes use {others:.1f} cores: OpenMP threads wait passively"
