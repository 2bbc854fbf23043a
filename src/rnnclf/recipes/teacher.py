"""train.teacher's outputs: a run's or an ensemble's calibrated logits, or a JSONL file's probabilities or logits
from any model, for the texts a student trains on. Computed once per teacher and texts, and cached
($RNNCLF_CACHE/teacher/<key>.npy, the key hashing the teacher's digest and the texts), so that resuming, every
process of a distributed run and every trial of rnnclf tune read them instead of predicting again.

A teacher file has one JSON object per line: "text" (the text, exactly) or "id" (the line of data.train where a
training row starts), and "probs" or "logits": {label: value}. Single-label probabilities are normalised to sum
to 1; a label a row leaves out has probability 0 (probs) and is an error (logits). Multi-label: each label's
probability or log-odds on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.data.builtin import cache_dir
from rnnclf.errors import RnnclfError
from rnnclf.files import ENSEMBLE, LABELS
from rnnclf.inference.ensemble import is_ensemble, load_ensemble, load_predictor
from rnnclf.runs.directory import run_digest

SMALLEST = 1e-7  # probabilities are kept within [SMALLEST, 1 - SMALLEST] when turned into logits


@dataclass
class Teacher:
    """Where a teacher is, what it is (run, ensemble or file) and the digest that identifies its outputs."""

    path: Path
    kind: str
    digest: str

    def record(self) -> dict[str, str]:
        return {"path": str(self.path), "kind": self.kind, "digest": self.digest}


def find_teacher(path: Path) -> Teacher:
    """train.teacher as a Teacher; one line when it is missing or not a teacher."""
    where = f"train.teacher: {path}"
    if not path.exists():
        raise RnnclfError(f"{where}: not found (a run or ensemble directory, or a JSONL file)")
    resolved = path.resolve()
    if resolved.is_file():
        if resolved.suffix.lower() != ".jsonl":
            raise RnnclfError(f'{where}: a teacher file is JSONL (one {{"text", "probs" | "logits"}} per line)')
        return Teacher(resolved, "file", file_digest([resolved]))
    if is_ensemble(resolved):  # its ensemble.json holds every member's digest, checked here against the members
        load_ensemble(resolved)
        return Teacher(resolved, "ensemble", file_digest([resolved / name for name in (ENSEMBLE, LABELS)], extra=True))
    return Teacher(resolved, "run", run_digest(resolved))


def file_digest(paths: list[Path], extra: bool = False) -> str:
    digest = hashlib.sha256()
    folder = paths[0].parent
    names = [path.name for path in paths]
    if extra:  # an ensemble's fitted files too
        names += [name for name in ("calibration.json", "thresholds.json") if (folder / name).exists()]
    for name in names:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return digest.hexdigest()


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return digest.hexdigest()


def teacher_logits(
    teacher: Teacher,
    texts: Sequence[str],
    lines: Sequence[int | None],
    labels: list[str],
    multi_label: bool,
    log: Callable[[str], None],
    device: str = "auto",
) -> np.ndarray:
    """The teacher's logits (float32, texts x labels in `labels` order) of `texts`, from the cache when it has
    them. `lines`: each text's line in data.train (None for texts from elsewhere), what a file's "id" names."""
    key = hashlib.sha256(f"{teacher.digest}\0{texts_digest(texts)}\0{json.dumps(labels)}".encode()).hexdigest()
    cached = cache_dir() / "teacher" / f"{key[:32]}.npy"
    if cached.exists():
        found = np.load(cached)
        if found.shape == (len(texts), len(labels)):
            log(f"teacher: {len(texts):,} texts' outputs from the cache ({cached})")
            return found
    if teacher.kind == "file":
        logits = read_teacher_file(teacher.path, texts, lines, labels, multi_label)
    else:
        logits = predict_teacher(teacher, texts, labels, multi_label, device)
    log(f"teacher: {teacher.kind} {teacher.path} labelled {len(texts):,} texts (cached in {cached})")
    save_array(cached, logits.astype(np.float32))
    return logits.astype(np.float32)


def predict_teacher(
    teacher: Teacher, texts: Sequence[str], labels: list[str], multi_label: bool, device: str
) -> np.ndarray:
    """A run's or an ensemble's calibrated logits of the texts, columns in `labels` order."""
    import torch

    from rnnclf.device.cores import available_cores

    with torch.random.fork_rng(devices=[]):  # building the teacher's models draws from torch's generator: a student
        predictor = load_predictor(teacher.path, device, workers=available_cores())  # starts the same, cached or not
    where = f"train.teacher: {teacher.path}"
    if predictor.multi_label != multi_label:
        kinds = {True: "multi-label", False: "single-label"}
        raise RnnclfError(f"{where}: a {kinds[predictor.multi_label]} teacher for {kinds[multi_label]} data")
    if sorted(predictor.labels) != sorted(labels):
        differ = sorted(set(predictor.labels) ^ set(labels))[:5]
        raise RnnclfError(f"{where}: its labels differ from the data's ({', '.join(differ)})")
    order = [predictor.labels.index(label) for label in labels]
    return predictor.logits(list(texts))[:, order]


def read_teacher_file(
    path: Path, texts: Sequence[str], lines: Sequence[int | None], labels: list[str], multi_label: bool
) -> np.ndarray:
    """Each text's logits from a teacher JSONL file; one line naming the file and row for any row it cannot use,
    and for a text it has no row for."""
    by_text, by_id = read_rows(path, labels, multi_label)
    out = np.zeros((len(texts), len(labels)), dtype=np.float32)
    for position, (text, line) in enumerate(zip(texts, lines, strict=True)):
        row = by_text.get(text)
        if row is None and line is not None:
            row = by_id.get(line)
        if row is None:
            shown = text[:60] + ("..." if len(text) > 60 else "")
            where = f"line {line} of data.train" if line is not None else "a data.unlabelled or augmented text"
            raise RnnclfError(f"{path}: no row for the text {shown!r} ({where}); the teacher must label every text")
        out[position] = row
    return out


def read_rows(path: Path, labels: list[str], multi_label: bool) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
    by_text: dict[str, np.ndarray] = {}
    by_id: dict[int, np.ndarray] = {}
    try:
        handle = open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise RnnclfError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path} line {number}"
                key, logits = parse_row(line, labels, multi_label, where)
                (by_text if isinstance(key, str) else by_id)[key] = logits
        except UnicodeDecodeError as exc:
            raise RnnclfError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not by_text and not by_id:
        raise RnnclfError(f"{path}: no rows")
    return by_text, by_id


def parse_row(line: str, labels: list[str], multi_label: bool, where: str) -> tuple[str | int, np.ndarray]:
    """One row's key (its text, or the int id) and logits in `labels` order."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        raise RnnclfError(f"{where}: not a JSON object") from None
    if not isinstance(row, dict):
        raise RnnclfError(f"{where}: not a JSON object")
    key = row.get("text", row.get("id"))
    if not (isinstance(key, str) and key.strip()) and not (isinstance(key, int) and not isinstance(key, bool)):
        raise RnnclfError(f'{where}: needs "text" (a non-empty string) or "id" (the row\'s line in data.train)')
    kinds = [name for name in ("probs", "logits") if name in row]
    if len(kinds) != 1 or not isinstance(row[kinds[0]], dict) or not row[kinds[0]]:
        raise RnnclfError(f'{where}: needs one of "probs" or "logits", an object of label to number')
    values = row[kinds[0]]
    unknown = [label for label in values if label not in labels]
    if unknown:
        raise RnnclfError(f"{where}: label {unknown[0]!r} is not in the training data")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in values.values()):
        raise RnnclfError(f"{where}: every {kinds[0]} value must be a finite number")
    return key, row_logits(values, kinds[0], labels, multi_label, where)


def row_logits(values: dict[str, Any], kind: str, labels: list[str], multi_label: bool, where: str) -> np.ndarray:
    if kind == "logits":
        missing = [label for label in labels if label not in values]
        if missing:
            raise RnnclfError(f"{where}: no logit for label {missing[0]!r}; logits need every label")
        return np.array([values[label] for label in labels], dtype=np.float64)
    probs = np.array([values.get(label, 0.0) for label in labels], dtype=np.float64)
    if np.any(probs < 0) or np.any(probs > 1):
        raise RnnclfError(f"{where}: probabilities must lie between 0 and 1")
    if multi_label:
        probs = np.clip(probs, SMALLEST, 1 - SMALLEST)
        return np.log(probs) - np.log1p(-probs)
    if probs.sum() <= 0:
        raise RnnclfError(f"{where}: the probabilities sum to 0")
    return np.log(np.clip(probs / probs.sum(), SMALLEST, 1))


def save_array(path: Path, array: np.ndarray) -> None:
    """Atomically, so that processes reading the cache never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
