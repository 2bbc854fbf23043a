"""safetensors files, written whole and atomically and read in one go: never a pickle, never half a file."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from rnnclf.errors import RnnclfError
from rnnclf.files import write_atomic


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    write_atomic(path, save_safetensors_bytes(tensors, metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    return read_tensors(path)[0]


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata from ONE read of the file: a save that replaces it meanwhile cannot mix two versions."""
    if not path.exists():
        raise RnnclfError(f"{path}: missing; is this a complete run directory?")
    try:
        data = path.read_bytes()
        tensors = load_safetensors_bytes(data)
        (size,) = struct.unpack("<Q", data[:8])
        metadata = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
    except (SafetensorError, ValueError, OSError, struct.error) as exc:
        raise RnnclfError(f"{path}: not a valid safetensors file ({exc}); the file is damaged or truncated") from None
    return tensors, metadata
