"""A run directory's file names and the atomic writes every rnnclf file goes through.

Imports neither torch nor safetensors, so that `rnnclf report` (and anything else that only reads YAML and JSON)
starts fast; rnnclf.runs.directory loads a whole run on top of this.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from rnnclf.errors import RnnclfError

CONFIG, LABELS, TOKENIZER, WEIGHTS = "config.yaml", "labels.json", "tokenizer.json", "model.safetensors"
METRICS_LOG, METRICS, ENV, STATE = "metrics.jsonl", "metrics.json", "env.json", "state"
THRESHOLDS = "thresholds.json"  # multi-label runs: the decision threshold of each label
CALIBRATION = "calibration.json"  # the temperature fitted on validation after training (train.calibration)
CONFORMAL = "conformal.json"  # validation scores for prediction sets (train.conformal) and out-of-domain flags
LANGUAGE_MODEL = "language_model.json"  # rnnclf pretrain's runs: what the language model read, its output layers
ENSEMBLE = "ensemble.json"  # rnnclf ensemble's directories: the member runs, their digests, how they combine
FORMAT_VERSION = 1  # bump when the run directory's layout changes incompatibly


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


UMASK = os.umask(0)
os.umask(UMASK)


def check_output_file(path: Path, option: str, example: str) -> None:
    """Before any work: an output file named on the command line must be in a folder that exists, and not be a
    folder itself (one line naming the option; nothing is written)."""
    if path.is_dir():
        raise RnnclfError(f"{option} {path}: is a folder; give a file name such as {path / example}")
    if not path.parent.is_dir():
        raise RnnclfError(f"{option} {path}: the folder {path.parent} does not exist")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers see the old or the new file, never half.
    Through a symbolic link, the link stays and its target is replaced."""
    target = path.resolve() if path.is_symlink() else path
    temp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.chmod(temp, 0o666 & ~UMASK)  # mkstemp makes 0600; a run directory is for sharing
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # disk full, read-only folder, ...: the previous version is intact
            raise RnnclfError(
                f"{path}: cannot write ({exc.strerror or exc}); the previous version of the file is kept"
            ) from exc
        raise


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_yaml(path: Path, value: Any) -> None:
    write_atomic(path, yaml.safe_dump(value, sort_keys=False, allow_unicode=True).encode("utf-8"))


def append_line(path: Path, value: Any) -> None:
    """Append one JSON line (rewritten atomically, so a crash never leaves a torn last line)."""
    old = path.read_bytes() if path.exists() else b""
    write_atomic(path, old + (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8"))
