"""TensorBoard scalars of a training run (extra rnnclf[tensorboard], imported only when output.tensorboard is on)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rnnclf.errors import RnnclfError

TENSORBOARD = "tensorboard"


@contextmanager
def tensorboard(enabled: bool, run_dir: Path, resume_step: int | None) -> Iterator[Any]:
    """A SummaryWriter on RUN/tensorboard/ (or None when not enabled), closed at the end.

    On resume, events past the saved step are purged, so the steps trained again are not logged twice.
    """
    if not enabled:
        yield None
        return
    writer_class = require_tensorboard()
    writer = writer_class(str(run_dir / TENSORBOARD), purge_step=None if resume_step is None else resume_step + 1)
    try:
        yield writer
    finally:
        writer.close()


def require_tensorboard() -> type:
    """torch's SummaryWriter; a config that asks for TensorBoard without the package fails in one line."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RnnclfError(
            "output.tensorboard is true but the tensorboard package is not installed; "
            "install it with: pip install 'rnnclf[tensorboard]' (or set output.tensorboard: false)"
        ) from None
    return SummaryWriter


def log_step(writer: Any, step: int, loss: float, lr: float) -> None:
    writer.add_scalar("train/loss", loss, step)
    writer.add_scalar("train/lr", lr, step)


NOT_SCALARS = ("epoch", "step", "lr", "epoch_seconds", "valid_seconds")


def log_epoch(writer: Any, record: dict[str, Any]) -> None:
    """An epoch's line of metrics.jsonl, at the epoch's last step: train_x as train/epoch_x, valid_x as valid/x,
    tokens_per_s as speed/tokens_per_s (a classifier's accuracy and F1, a language model's perplexity)."""
    step = record["step"]
    for key, value in record.items():
        if key in NOT_SCALARS or not isinstance(value, int | float):
            continue
        if key.startswith("train_"):
            tag = f"train/epoch_{key.removeprefix('train_')}"
        elif key.startswith("valid_"):
            tag = f"valid/{key.removeprefix('valid_')}"
        else:
            tag = f"speed/{key}"
        writer.add_scalar(tag, value, step)
    writer.flush()  # an epoch's scalars are on disk even if the run is killed next
