"""Data-parallel training over processes that torchrun starts: gloo on the CPU, NCCL on CUDA.

torchrun gives each process RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE; without them training runs
in one process and everything here is a no-op. How the work divides: every process builds the same seeded
list of length-bucketed batches for an epoch and takes every world-th one (rank r takes batches r, r + W, ...),
so each process trains on 1/W of the batches with `train.batch_size` texts each, and DistributedDataParallel
averages the gradients: one optimizer step consumes W batches. Validation texts are split the same way and the
logits gathered, so every process computes the same metrics and makes the same early-stopping decision.
Only rank 0 writes the run directory and prints.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from rnnclf.device.cores import available_cores
from rnnclf.errors import RnnclfError

# a collective that waits longer than this for a process fails instead of hanging (RNNCLF_DIST_TIMEOUT, seconds)
DEFAULT_TIMEOUT = 300
# A process that lost its peers waits this long before it exits, so that torchrun records the process that
# failed first (a mistake that rank 0 found and reported: exit code 2) rather than this consequence (exit 1).
# torchrun stops the waiting process as soon as it sees the first failure.
LOST_PEER_GRACE = 5.0
LAUNCHED = "RNNCLF_LAUNCHED"  # set in the processes that `rnnclf train --nproc` starts


class LostPeers(RnnclfError):
    """Another training process died or stopped answering: this one stops too (exit code 1, not a user mistake)."""

    exit_code = 1


class RankError(RnnclfError):
    """A mistake that only some processes meet (their GPU, joining the group): every process reports its own."""

    exit_code = 1
    every_rank = True


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_env() -> Group:
    """This process's place among torchrun's processes (rank 0 of 1 when not started by torchrun)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError:
        raise RnnclfError("RANK / WORLD_SIZE / LOCAL_RANK must be whole numbers (torchrun sets them)") from None
    return Group(rank, world, local_rank, local_world)


def start(group: Group, device: torch.device) -> torch.device:
    """Join the process group; on CUDA each process takes the GPU of its local rank. Returns the device to use."""
    if not group.active:
        return device
    if device.type == "cuda":
        if group.local_rank >= torch.cuda.device_count():
            raise RankError(
                f"local rank {group.local_rank} has no GPU: {torch.cuda.device_count()} visible; "
                "start at most one process per GPU (--nproc)"
            )
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    if dist.is_initialized():  # rnnclf tune --nproc: the group outlives each trial's training
        return device
    timeout = timedelta(seconds=float(os.environ.get("RNNCLF_DIST_TIMEOUT", DEFAULT_TIMEOUT)))
    try:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    except (RuntimeError, ValueError) as exc:
        raise RankError(f"rank {group.rank}: could not join the other training processes ({first_line(exc)})") from None
    return device


def joined() -> bool:
    return dist.is_available() and dist.is_initialized()


def stop(group: Group, together: bool = False) -> None:
    """Leave the process group; `together` (every rank finished): first wait for the others, so that no rank
    tears its connections down while another still writes its last files (a rank that left early was seen to
    abort at exit, rarely, under load: "terminate called without an active exception")."""
    if group.active and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def first_line(exc: BaseException) -> str:
    """The gist of a backend's error: its first sentence, without the source-file prefix."""
    lines = str(exc).strip().splitlines()
    text = re.sub(r"^\[[^\]]*\]\s*", "", lines[0]) if lines else ""
    return text.split(". ")[0] or type(exc).__name__


def shard(batches: list[np.ndarray], group: Group) -> list[np.ndarray]:
    """This rank's share of an epoch's batches: every world-th one. The list is first padded by repeating its
    start so that every rank takes the same number of steps (DDP needs them in lockstep)."""
    if not group.active or not batches:
        return batches
    steps = -(-len(batches) // group.world)
    padded = batches + batches[: steps * group.world - len(batches)]
    return padded[group.rank :: group.world]


def steps_per_epoch(num_batches: int, group: Group) -> int:
    return -(-num_batches // group.world)


def wait_limit(group: Group) -> float:
    """Seconds one rank may work alone while the others wait at a barrier: half the collectives' timeout."""
    if not group.active:
        return float("inf")
    return float(os.environ.get("RNNCLF_DIST_TIMEOUT", DEFAULT_TIMEOUT)) / 2


def barrier(group: Group) -> None:
    if group.active:
        dist.barrier()


def sum_all(values: list[float], group: Group, device: torch.device) -> list[float]:
    """Element-wise sums over all ranks."""
    if not group.active:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_rank(flag: bool, group: Group, device: torch.device) -> bool:
    """True on every rank when it is true on any: all ranks stop at the same step."""
    if not group.active:
        return flag
    return sum_all([float(flag)], group, device)[0] > 0


def broadcast(value: Any, group: Group, channel: Any = None) -> Any:
    """Rank 0's value (a picklable object made by rnnclf itself), on every rank; through `channel` (a process group
    of new_channel) when given."""
    if not group.active:
        return value
    box = [value if group.main else None]
    dist.broadcast_object_list(box, src=0, group=channel)
    return box[0]


def new_channel(timeout_seconds: float) -> Any:
    """A gloo process group of all ranks for messages that may wait longer than training's collectives should."""
    return dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_seconds))


def gather(value: Any, group: Group) -> list[Any]:
    """Every rank's value (picklable objects made by rnnclf itself), in rank order, on every rank."""
    if not group.active:
        return [value]
    out: list[Any] = [None] * group.world
    dist.all_gather_object(out, value)
    return out


def is_lost_peer(exc: BaseException) -> bool:
    """An error raised by a collective because another process is gone or silent."""
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        marker in text for marker in ("gloo", "nccl", "connection", "timed out", "broken pipe", "peer")
    )


def lost_peers(exc: BaseException, group: Group, resume_command: str, saved: bool) -> LostPeers:
    """The error this process stops with when another one is gone (after a grace period on ranks other than 0,
    so that torchrun records the process that failed first: a mistake rank 0 reported, exit code 2)."""
    if not group.main:
        time.sleep(LOST_PEER_GRACE)
    after = f"continue from the last saved state with: {resume_command}" if saved else "no state was saved yet"
    return LostPeers(f"rank {group.rank}: lost the other training processes ({first_line(exc)}); {after}")


def launch(nproc: int, argv: list[str], after_failure: Callable[[], str]) -> int:
    """`rnnclf train --nproc N ...`: run `torchrun --standalone --nproc-per-node N -m rnnclf ARGV...` in this
    process and say in one line which process failed, if one did, and what `after_failure()` says about going on
    (said here, since rank 0 may be stopped before it can say it). Returns the exit code."""
    os.environ.setdefault("LOGLEVEL", "ERROR")  # torchrun's own warnings; the lines below say what happened
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic") or name == "torch.distributed.run":
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, available_cores() // nproc)))  # torchrun would say it sets 1
    args = parse_args(["--standalone", "--nproc-per-node", str(nproc), "-m", "rnnclf", *argv])
    os.environ[LAUNCHED] = "1"
    try:
        run(args)
    except SignalException as exc:  # Ctrl-C / SIGTERM: torchrun passed it on; the processes saved their state
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        failures = sorted(exc.failures.items(), key=lambda item: item[1].timestamp)
        codes = {failure.exitcode for _, failure in failures}
        for code in (2, 130, 143):  # a mistake in the input, or stopped with the state saved: rank 0 said so
            if code in codes:
                return code
        rank, failure = failures[0]
        how = f"killed by {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        print(
            f"rnnclf: error: training process rank {rank} failed first ({how}); the others were stopped; "
            f"{after_failure()}",
            file=sys.stderr,
        )
        return 1
    finally:
        del os.environ[LAUNCHED]
    return 0
