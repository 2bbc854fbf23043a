"""Loading a run directory back for eval, predict, export and serve, without ever unpickling.

runs/<name>/config.yaml, labels.json, tokenizer.json, model.safetensors, state/, metrics.jsonl,
metrics.json, env.json (names in rnnclf.files). Tensors are safetensors; everything else JSON or YAML.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tokenizers import Tokenizer

from rnnclf import __version__
from rnnclf.config.loading import parse_config
from rnnclf.config.schema import Config
from rnnclf.data.ngrams import WIDE_FEATURES, NgramFeatures
from rnnclf.data.tokenizer import load_tokenizer
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import read_temperature
from rnnclf.evaluation.thresholds import read_thresholds
from rnnclf.files import (
    CALIBRATION,
    CONFIG,
    ENSEMBLE,
    ENV,
    FORMAT_VERSION,
    LABELS,
    LANGUAGE_MODEL,
    THRESHOLDS,
    TOKENIZER,
    WEIGHTS,
)


@dataclass
class Run:
    """Everything predict and eval need from a run directory."""

    path: Path
    config: Config
    labels: list[str]
    tokenizer: Tokenizer
    weights: dict[str, Any]  # torch tensors (none when loaded with weights=False)
    thresholds: np.ndarray | None = None  # multi-label: each label's decision threshold (thresholds.json, else 0.5)
    temperature: np.ndarray | None = None  # divides the logits (calibration.json); None: not calibrated
    wide: NgramFeatures | None = (
        None  # model.wide: the n-grams of the wide head (wide_words.json, wide_features.safetensors)
    )


def load_run(path: Path | str, weights: bool = True) -> Run:
    """Read a run directory; `weights=False` for a run stopped before its first epoch ended (resume)."""
    path = Path(path)
    if not path.exists():
        raise RnnclfError(f"{path}: run directory not found")
    if not path.is_dir():
        raise RnnclfError(f"{path}: not a directory; pass the run directory that `rnnclf train` wrote")
    if (path / ENSEMBLE).exists():
        raise RnnclfError(
            f"{path}: an ensemble of runs (rnnclf ensemble); eval, predict, serve and report take it, this command "
            "takes one run: pass one of its members"
        )
    if (path / LANGUAGE_MODEL).exists():
        raise RnnclfError(
            f"{path}: a language model (rnnclf pretrain), not a classifier; name it in a classifier config's "
            "model.init and train that"
        )
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
    tensors = load_weights(path) if weights else {}
    config = parse_config(raw, path / CONFIG)
    thresholds = None
    if config.data.multi_label:  # thresholds.json is written when training ends; until then, 0.5 for every label
        file = path / THRESHOLDS
        thresholds = (
            read_thresholds(_read_json(file), labels, str(file)) if file.exists() else np.full(len(labels), 0.5)
        )
    temperature = None  # calibration.json is written when training ends, before thresholds.json
    if (path / CALIBRATION).exists():
        temperature = read_temperature(
            _read_json(path / CALIBRATION), labels, config.data.multi_label, str(path / CALIBRATION)
        )
    wide = NgramFeatures.load(path) if config.model.wide else None
    return Run(path, config, labels, load_tokenizer(path / TOKENIZER), tensors, thresholds, temperature, wide)


def update_chain(run: Run, longest: int = 100) -> list[Run]:
    """The run, then each classifier run it was updated from (model.init), as far back as they are still there;
    read without weights."""
    chain, seen = [run], {str(Path(run.path).resolve())}
    while len(chain) < longest:
        init = chain[-1].config.model.init
        if init is None or not (Path(init) / WEIGHTS).exists() or (Path(init) / LANGUAGE_MODEL).exists():
            break
        if str(Path(init).resolve()) in seen:
            break
        seen.add(str(Path(init).resolve()))
        try:
            chain.append(load_run(init, weights=False))
        except RnnclfError:
            break
    return chain


def load_weights(path: Path) -> dict[str, Any]:
    """RUN/model.safetensors as torch tensors (torch is imported here, when weights are wanted: the linear model's
    numpy predictor (inference/linear.py) reads a run without it)."""
    from rnnclf.runs.tensors import load_tensors

    return load_tensors(path / WEIGHTS)


PREDICTION_FILES = (CONFIG, LABELS, TOKENIZER, WEIGHTS, CALIBRATION, THRESHOLDS, WIDE_FEATURES)


def run_digest(run_path: Path) -> str:
    """sha256 of every file a run's predictions depend on (config, labels, tokenizer, weights, temperature,
    thresholds, the wide head's n-grams): an ensemble's or a student's record that the run is the one it used."""
    digest = hashlib.sha256()
    for name in PREDICTION_FILES:
        file = run_path / name
        if file.exists():
            digest.update(f"{name}\0{file.stat().st_size}\0".encode())
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def weights_digest(run_path: Path) -> str:
    """sha256 of the run's best weights: what an export or an int8 check was made from."""
    return hashlib.sha256((run_path / WEIGHTS).read_bytes()).hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RnnclfError(f"{path}: not valid JSON; the run directory is damaged") from None
