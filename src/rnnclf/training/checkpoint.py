"""The training state, to and from RUN/state/state.safetensors: weights, optimizer, schedule, scaler, random
state and where training is. Pickle-free and in one file written atomically: the tensors as safetensors, the
JSON skeleton that names them in its metadata."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rnnclf.errors import RnnclfError
from rnnclf.files import STATE
from rnnclf.runs.tensors import read_tensors, save_tensors
from rnnclf.training.distributed import Group

STATE_FILE = "state.safetensors"


def has_state(run_dir: Path) -> bool:
    """Whether a run directory holds a saved training state (RUN/state/state.safetensors)."""
    return (run_dir / STATE / STATE_FILE).exists()


@dataclass
class Progress:
    """Where training is: everything besides the tensors that a resumed run needs to continue exactly."""

    epoch: int = 1  # the epoch in progress
    batch: int = 0  # batches of it done
    step: int = 0
    best: float | None = None
    best_epoch: int = 0
    stale: int = 0
    total_loss: float = 0.0  # this epoch's running sums
    correct: int = 0
    seen: int = 0
    tokens: int = 0
    seconds: float = 0.0  # training time so far, over all sessions
    summary: dict[str, Any] = field(default_factory=dict)

    def count(self, texts: int, tokens: int, loss: float, correct: int) -> None:
        """One training step done on `texts` texts (the loop counts the batch)."""
        self.step += 1
        self.total_loss += loss * texts
        self.correct += correct
        self.seen += texts
        self.tokens += tokens

    def next_epoch(self, stop: bool, epochs: int) -> None:
        self.epoch = epochs + 1 if stop else self.epoch + 1
        self.batch, self.total_loss, self.correct, self.seen, self.tokens = 0, 0.0, 0, 0, 0


def flatten_state(value: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Split nested state (optimizer, scheduler, RNG) into tensors and a JSON skeleton that names them."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value
        return {"__tensor__": prefix}
    if isinstance(value, dict):
        return {
            "__dict__": [
                [flatten_state(k, tensors, f"{prefix}.k{i}"), flatten_state(v, tensors, f"{prefix}.{i}")]
                for i, (k, v) in enumerate(value.items())
            ]
        }
    if isinstance(value, (list, tuple)):
        items = [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a training state")


def unflatten_state(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(unflatten_state(v, tensors) for v in value["__tuple__"])
        return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [unflatten_state(v, tensors) for v in value]
    return value


def save_state(directory: Path, state: dict[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten_state(state, tensors)
    save_tensors(directory / STATE_FILE, tensors, metadata={"state": json.dumps(skeleton)})


def load_state(directory: Path) -> dict[str, Any]:
    path = directory / STATE_FILE
    if not path.exists():
        raise RnnclfError(f"{directory}: no saved training state ({STATE_FILE})")
    tensors, metadata = read_tensors(path)
    if "state" not in metadata:
        raise RnnclfError(f"{path}: not a training state (no 'state' metadata)")
    return unflatten_state(json.loads(metadata["state"]), tensors)


def training_state(model, optimizer, scheduler, scaler, progress: Progress) -> dict[str, Any]:
    """The last training state: weights, optimizer, schedule, scaler, RNG, and where training is."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "progress": asdict(progress),
    }


def rank_state(progress: Progress) -> dict[str, Any]:
    """What differs between the processes of a distributed run: random state and this epoch's running sums."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
        "sums": [progress.total_loss, progress.correct, progress.seen, progress.tokens],
    }


def restore_state(
    state: dict[str, Any], model, optimizer, scheduler, scaler, device: torch.device, group: Group | None = None
) -> Progress:
    """Put a saved state back; a distributed run continues mid-epoch only with as many processes as it had."""
    group = group or Group()
    ranks = state.get("ranks") or [None]
    progress = Progress(**state["progress"])
    if progress.batch and len(ranks) != group.world:
        raise RnnclfError(
            f"the saved state is from the middle of an epoch of a run with {len(ranks)} process(es); "
            f"resume it with --nproc {len(ranks)}"
        )
    model.load_state_dict(state["model"])
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler.is_enabled() and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    own = ranks[group.rank] if group.rank < len(ranks) else None
    if own is not None:
        _restore_rank(own, progress, device)
    elif group.active:  # at an epoch's start with another number of processes: a fresh stream per rank
        torch.manual_seed(1_000_003 * progress.step + group.rank)
    return progress


def _restore_rank(own: dict[str, Any], progress: Progress, device: torch.device) -> None:
    torch.set_rng_state(own["torch_rng"])
    if own["cuda_rng"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(own["cuda_rng"], device)
    total_loss, correct, seen, tokens = own["sums"]
    progress.total_loss, progress.correct, progress.seen, progress.tokens = (
        total_loss,
        int(correct),
        int(seen),
        int(tokens),
    )
