"""An ensemble directory (rnnclf ensemble) read back, and its predictor: the mean of its members' calibrated
probabilities (multi-label: per label), through the ensemble's own temperature and thresholds when it has them.

ENSEMBLE/ensemble.json names each member run (its absolute path) and the digest of the files its predictions
depend on (runs.directory.run_digest); a member that moved, or changed since, is refused in one line. Beside it:
labels.json, metrics.json, env.json, and where they were fitted calibration.json and thresholds.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.config.schema import Config
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate, read_temperature
from rnnclf.evaluation.scores import probabilities
from rnnclf.evaluation.thresholds import read_thresholds
from rnnclf.files import CALIBRATION, CONFIG, ENSEMBLE, LABELS, THRESHOLDS
from rnnclf.inference.decisions import Decisions, check_texts
from rnnclf.inference.predictor import Predictor
from rnnclf.runs.directory import load_run, run_digest

SMALLEST = 1e-7  # probabilities are kept within [SMALLEST, 1 - SMALLEST] when turned back into logits


@dataclass
class Member:
    path: Path
    digest: str


@dataclass
class Ensemble:
    """What predict, eval and serve read of an ensemble directory. `config` is the first member's: its data (the
    splits eval reads) and the settings serve describes. `shared_valid`: the members share one validation split
    (none of them trained on it), so the ensemble was calibrated there and eval may score it there."""

    path: Path
    config: Config
    labels: list[str]
    members: list[Member]
    multi_label: bool
    shared_valid: bool
    thresholds: np.ndarray | None = None
    temperature: np.ndarray | None = None
    record: dict[str, Any] = field(default_factory=dict)  # ensemble.json as read


def is_ensemble(path: Path | str) -> bool:
    return (Path(path) / ENSEMBLE).is_file()


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise RnnclfError(f"{path}: missing or not valid JSON; the ensemble directory is damaged") from None


def check_member(path: Path, digest: str, ensemble: Path) -> None:
    """A member must be where the ensemble found it, unchanged."""
    if not (path / CONFIG).is_file():
        raise RnnclfError(f"{ensemble}: member {path} is gone (no {CONFIG}); make the ensemble again")
    if run_digest(path) != digest:
        raise RnnclfError(
            f"{ensemble}: member {path} changed since the ensemble was made (its files' digest differs); make the "
            "ensemble again with rnnclf ensemble"
        )


def load_ensemble(path: Path | str) -> Ensemble:
    """Read an ensemble directory, checking that every member is there and unchanged."""
    path = Path(path)
    record = read_json(path / ENSEMBLE)
    members_raw = record.get("members") if isinstance(record, dict) else None
    if not isinstance(members_raw, list) or not members_raw:
        raise RnnclfError(f"{path / ENSEMBLE}: no 'members' list; the ensemble directory is damaged")
    members = []
    for entry in members_raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or "digest" not in entry:
            raise RnnclfError(f"{path / ENSEMBLE}: a member without 'path' and 'digest'; the directory is damaged")
        member = Member(Path(entry["path"]), str(entry["digest"]))
        check_member(member.path, member.digest, path)
        members.append(member)
    labels = read_json(path / LABELS)
    config = load_run(members[0].path, weights=False).config
    multi_label = bool(record.get("multi_label"))
    ensemble = Ensemble(path, config, labels, members, multi_label, bool(record.get("shared_valid")), record=record)
    if multi_label:
        ensemble.thresholds = read_thresholds(read_json(path / THRESHOLDS), labels, str(path / THRESHOLDS))
    if (path / CALIBRATION).exists():
        ensemble.temperature = read_temperature(
            read_json(path / CALIBRATION), labels, multi_label, str(path / CALIBRATION)
        )
    return ensemble


def mean_logits(member_logits: Sequence[np.ndarray], multi_label: bool) -> np.ndarray:
    """Logits whose softmax (multi-label: sigmoids) are the mean of the members' probabilities: the log of the
    mean (the log-odds of each label's mean)."""
    mean = np.mean([probabilities(logits, multi_label) for logits in member_logits], axis=0, dtype=np.float64)
    mean = np.clip(mean, SMALLEST, 1 - SMALLEST)
    logits = np.log(mean) - np.log1p(-mean) if multi_label else np.log(mean)
    return logits.astype(np.float32)


class EnsemblePredictor(Decisions):
    """The members' Predictors, answering as one: each member reads the texts with its own tokenizer (and wide
    head), and their calibrated probabilities are averaged."""

    int8 = False

    def __init__(self, ensemble: Ensemble, device: str = "auto", workers: int = 1) -> None:
        self.run = ensemble
        self.labels, self.multi_label = ensemble.labels, ensemble.multi_label
        self.thresholds, self.temperature = ensemble.thresholds, ensemble.temperature
        self.members = [Predictor(load_run(member.path), device, workers=workers) for member in ensemble.members]
        self.device = self.members[0].device
        for member in self.members:
            if member.labels != self.labels:
                raise RnnclfError(f"{ensemble.path}: member {member.run.path} has other labels than the ensemble")

    @classmethod
    def load(cls, path: Path | str, device: str = "auto", workers: int = 1) -> EnsemblePredictor:
        return cls(load_ensemble(path), device, workers)

    def encode(self, texts: Iterable[str]) -> list[Any]:
        """The texts as each member reads them."""
        texts = list(texts)
        return [member.encode(texts) for member in self.members]

    def member_logits(self, encoded: list[Any]) -> list[np.ndarray]:
        """Each member's calibrated logits."""
        return [member.encoded_logits(part) for member, part in zip(self.members, encoded, strict=True)]

    def model_logits(self, encoded: list[Any]) -> np.ndarray:
        """The logits of the members' mean probabilities, before the ensemble's own temperature."""
        return mean_logits(self.member_logits(encoded), self.multi_label)

    def encoded_logits(self, encoded: list[Any]) -> np.ndarray:
        return calibrate(self.model_logits(encoded), self.temperature)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        check_texts(texts)
        return self.encoded_logits(self.encode(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return probabilities(self.logits(texts), self.multi_label)


def load_predictor(
    path: Path | str, device: str = "auto", workers: int = 1, int8: bool = False
) -> Predictor | EnsemblePredictor:
    """A run's Predictor, or an ensemble's."""
    if is_ensemble(path):
        if int8:
            raise RnnclfError(f"{path}: --int8 is for one run; an ensemble predicts with its members' fp32 models")
        return EnsemblePredictor.load(path, device, workers)
    return Predictor.load(path, device, workers=workers, int8=int8)
