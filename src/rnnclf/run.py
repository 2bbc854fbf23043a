"""The run directory: saving tensors and training state, and loading a run back without ever unpickling.

runs/<name>/config.yaml, labels.json, tokenizer.json, model.safetensors, state/, metrics.jsonl,
metrics.json, env.json. Tensors go into safetensors; everything else into JSON or YAML, each file written
atomically (rnnclf.files).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from tokenizers import Tokenizer

from rnnclf import __version__
from rnnclf.config import Config, parse_config
from rnnclf.errors import RnnclfError
from rnnclf.files import CONFIG, ENV, LABELS, TOKENIZER, WEIGHTS, write_atomic
from rnnclf.text import load_tokenizer

FORMAT_VERSION = 1  # bump when the run directory's layout changes incompatibly


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    write_atomic(path, save_safetensors_bytes(tensors, metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    return _read_tensors(path)[0]


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
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


STATE_FILE = "state.safetensors"


def save_state(directory: Path, state: dict[str, Any]) -> None:
    """The training state, pickle-free and in one file written atomically: the tensors in
    state/state.safetensors, and the JSON skeleton that names them in its metadata."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten_state(state, tensors)
    save_tensors(directory / STATE_FILE, tensors, metadata={"state": json.dumps(skeleton)})


def load_state(directory: Path) -> dict[str, Any]:
    path = directory / STATE_FILE
    if not path.exists():
        raise RnnclfError(f"{directory}: no saved training state ({STATE_FILE})")
    tensors, metadata = _read_tensors(path)
    if "state" not in metadata:
        raise RnnclfError(f"{path}: not a training state (no 'state' metadata)")
    return unflatten_state(json.loads(metadata["state"]), tensors)


@dataclass
class Run:
    """Everything predict and eval need from a run directory."""

    path: Path
    config: Config
    labels: list[str]
    tokenizer: Tokenizer
    weights: dict[str, torch.Tensor]


def load_run(path: Path | str, weights: bool = True) -> Run:
    """Read a run directory; `weights=False` for a run stopped before its first epoch ended (resume)."""
    path = Path(path)
    if not path.exists():
        raise RnnclfError(f"{path}: run directory not found")
    if not path.is_dir():
        raise RnnclfError(f"{path}: not a directory; pass the run directory that `rnnclf train` wrote")
    for name in (CONFIG, LABELS, TOKENIZER, WEIGHTS) if weights else (CONFIG, LABELS, TOKENIZER):
        if not (path / name).exists():
            raise RnnclfError(f"{path}: no {name}; not a complete run directory (did training finish an epoch?)")
    env = _read_json(path / ENV) if (path / ENV).exists() else {}
    version = env.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise RnnclfError(
            f"{path}: run directory format {version}, this rnnclf {__version__} reads format {FORMAT_VERSION}"
        )
    try:
        raw = yaml.safe_load((path / CONFIG).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise RnnclfError(f"{path / CONFIG}: unreadable config in run directory") from None
    if not isinstance(raw, dict):
        raise RnnclfError(f"{path / CONFIG}: unreadable config in run directory")
    labels = _read_json(path / LABELS)
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise RnnclfError(f"{path / LABELS}: expected a JSON list of label names")
    tensors = load_tensors(path / WEIGHTS) if weights else {}
    return Run(path, parse_config(raw, path / CONFIG), labels, load_tokenizer(path / TOKENIZER), tensors)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RnnclfError(f"{path}: not valid JSON; the run directory is damaged") from None
