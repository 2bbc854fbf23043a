"""What surrounds a training session: the run directory's birth and completion, env.json, seeds, and stopping on a
signal."""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
import torch

from rnnclf import __version__
from rnnclf.device.threads import FLUSHING
from rnnclf.errors import RnnclfError
from rnnclf.files import (
    CONFIG,
    ENV,
    FORMAT_VERSION,
    LABELS,
    METRICS,
    TOKENIZER,
    UMASK,
    write_atomic,
    write_json,
    write_yaml,
)


class TrainingStopped(Exception):
    """Training stopped on a signal after saving its state; `code` is the exit code (128 + signal)."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.code = 128 + signum


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_run_dir(run_dir: Path) -> None:
    """Never overwrite a run silently: an existing, non-empty run directory is an error."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise RnnclfError(
            f"{run_dir}: run directory already exists; choose another with --run-dir or output.run_dir, or delete it"
        )


def create_run_dir(run_dir: Path, write: Callable[[Path], None]) -> None:
    """Make the run directory whole or not at all: `write` fills a temporary folder beside it, which is then
    renamed into place. A run killed at any instant leaves either nothing or a directory `--resume` can use."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=f".{run_dir.name}-"))
    try:
        os.chmod(temp, 0o777 & ~UMASK)  # mkdtemp makes it private; a run directory is for sharing
        write(temp)
        os.replace(temp, run_dir)  # replaces an empty directory, never a full one (check_run_dir)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def is_complete(run_dir: Path) -> bool:
    """A run whose training and final evaluation are done: metrics.json is written last."""
    return (run_dir / METRICS).exists()


def complete_line(run_dir: Path) -> str:
    """What --resume of a finished run says (and exits 0: a job on a preemptible machine reruns the same resume)."""
    env = read_environment(run_dir) or {}
    when = f" at {env['finished']}" if env.get("finished") else ""
    return f"rnnclf: {run_dir}: the run is complete (finished{when}; results in {METRICS}); nothing to resume"


def write_run_files(folder: Path, config: dict[str, Any], labels: list[str], tokenizer: Any, env: dict) -> None:
    """What a run directory holds from its start: config.yaml, labels.json, tokenizer.json, env.json."""
    write_yaml(folder / CONFIG, config)
    write_json(folder / LABELS, labels)
    write_atomic(folder / TOKENIZER, tokenizer.to_str(pretty=True).encode("utf-8"))
    write_json(folder / ENV, env)


def read_environment(run_dir: Path) -> dict[str, Any] | None:
    """env.json of a run directory (None when missing: an older rnnclf may not have written it)."""
    path = run_dir / ENV
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except (ValueError, UnicodeDecodeError):
        raise RnnclfError(f"{path}: not valid JSON; the run directory is damaged") from None


def environment(device: torch.device, threads: int, precision: str, seed: int, command: list[str], world: int):
    """env.json: versions, device, threads, precision, seed, command line."""
    return {
        "format_version": FORMAT_VERSION,
        "rnnclf": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": threads,
        "flush_denormal": FLUSHING["denormals"],  # on the CPU, as use_cpu_threads set it
        "precision": precision,
        "processes": world,
        "seed": seed,
        "command": command,
        "started": now(),
    }


def keep_epochs_before(metrics_log: Path, epoch: int) -> None:
    """Drop metrics.jsonl's lines from `epoch` on: an epoch's line may have been written just before the kill
    that its saved state missed, and that epoch is trained again."""
    lines = metrics_log.read_text(encoding="utf-8").splitlines() if metrics_log.exists() else []
    kept = [line for line in lines if json.loads(line)["epoch"] < epoch]
    write_atomic(metrics_log, "".join(line + "\n" for line in kept).encode("utf-8"))


class StopFlag:
    signum: int | None = None


@contextmanager
def stop_on_signals(escalate: bool = True) -> Iterator[StopFlag]:
    """Ctrl-C and SIGTERM ask training to stop at the next step, after saving its state.

    A second one stops at once, unless `escalate` is off: under torchrun each process gets the terminal's
    Ctrl-C and torchrun's copy of it, and must still save (torchrun kills it after 30 s if it hangs)."""
    flag = StopFlag()

    def handler(signum: int, frame: Any) -> None:
        if flag.signum is not None and escalate:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        flag.signum = signum

    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
