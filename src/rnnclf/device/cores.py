"""What the machine has free: cores available to this process, and how many of them other processes use.

Imports no torch: the CLI asks before torch (and its OpenMP runtime, which reads OMP_WAIT_POLICY once, when it
loads) is imported. Linux's /proc/stat gives the busy time of the CPUs this process may use; its own CPU time is
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
    """(busy, all) CPU seconds since boot of the CPUs this process may run on, summed; None without /proc.
    Steal time (another virtual machine on the host) is not counted as busy: no process here can yield it."""
    try:
        allowed = {f"cpu{core}" for core in os.sched_getaffinity(0)}
    except AttributeError:
        allowed = None
    busy = total = 0
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            for line in handle:
                name, *values = line.split()
                if not name.startswith("cpu") or name == "cpu" or (allowed is not None and name not in allowed):
                    continue
                fields = [int(value) for value in values[:7]]  # user nice system idle iowait irq softirq
                total += sum(fields)
                busy += sum(fields) - fields[3] - fields[4]
    except (OSError, ValueError, IndexError):
        return None
    return (busy / CLOCK_TICKS, total / CLOCK_TICKS) if total else None


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
        return max(0.0, min(float(available_cores()), busy / (now - last_now)))


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


passive_wait_reason: str | None = None  # set by prefer_passive_waiting; the training log says it


def prefer_passive_waiting(sample_seconds: float = 0.2) -> str | None:
    """Before torch is imported: on a machine where others already use CPU, make OpenMP threads sleep instead of
    spin while they wait (OMP_WAIT_POLICY=PASSIVE; a spinning thread steals the core another process needs).
    Returns why, for the log; None when the machine is idle or the user chose a policy."""
    if "OMP_WAIT_POLICY" in os.environ:
        return None
    others = sample_other_load(sample_seconds)
    if others is None or others < SPIN_SHARE:
        return None
    global passive_wait_reason
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    passive_wait_reason = f"other processes use {others:.1f} cores: OpenMP threads wait passively"
    return passive_wait_reason
