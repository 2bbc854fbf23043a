"""A corpus: train / valid / test splits of (text, label), from files or a built-in corpus."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass

import numpy as np

from rnnclf.config import DataConfig
from rnnclf.data.readers import Split, read_split
from rnnclf.errors import RnnclfError


@dataclass
class Corpus:
    train: Split
    valid: Split
    test: Split | None
    labels: list[str]  # label names in index order (sorted, so the order does not depend on the file)


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Carve `fraction` of each class out of `split` (seeded); classes with one example stay in train."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(split.labels):
        by_label.setdefault(label, []).append(index)
    held: list[int] = []
    for label in sorted(by_label):
        indices = np.array(by_label[label])
        rng.shuffle(indices)
        count = min(max(int(round(fraction * len(indices))), 1), len(indices) - 1)
        held.extend(indices[:count].tolist())
    held_set = set(held)
    keep = [i for i in range(len(split)) if i not in held_set]
    held.sort()

    def pick(indices: list[int], name: str) -> Split:
        return Split(
            [split.texts[i] for i in indices],
            [split.labels[i] for i in indices],
            f"{split.source} ({name})",
            array("q", (split.rows[i] for i in indices)) if split.rows else (),
            split.where,
        )

    return pick(keep, "train part"), pick(held, f"valid_fraction {fraction}")


def check_labels(split: Split, known: set[str], label_field: str) -> None:
    """A label in valid / test / eval data that training never saw is a mistake in the data."""
    for index, label in enumerate(split.labels):
        if label not in known:
            where = f"{split.where} {split.rows[index]}" if split.rows else f"text {index + 1}"
            raise RnnclfError(
                f"{split.source}: {where}: label '{label}' in '{label_field}' was never seen in training "
                f"(known: {', '.join(sorted(known)[:10])}{', ...' if len(known) > 10 else ''})"
            )


def load_corpus(config: DataConfig, seed: int) -> Corpus:
    """Read every split named by the data config, carve validation if needed, and check the labels."""
    if config.dataset is not None:
        from rnnclf.data.builtin import fetch

        files = fetch(config.dataset)
        fmt, text_field, label_field = "jsonl", "text", "label"
        train_path, valid_path, test_path = files["train"], files.get("valid"), files.get("test")
    else:
        fmt, text_field, label_field = config.format, config.text_field, config.label_field
        train_path, valid_path, test_path = config.train, config.valid, config.test

    def read(path):
        return read_split(path, text_field, label_field, fmt) if path is not None else None

    train, valid, test = read(train_path), read(valid_path), read(test_path)
    counts = Counter(train.labels)
    if len(counts) < 2:
        raise RnnclfError(
            f"{train.source}: only one class ('{train.labels[0]}') in '{label_field}'; a classifier needs at least two"
        )
    if valid is None:
        train, valid = stratified_split(train, config.valid_fraction, seed)
    known = set(counts)
    for split in (valid, test):
        if split is not None:
            check_labels(split, known, label_field)
    return Corpus(train, valid, test, sorted(known, key=_natural))


def _natural(label: str) -> tuple[int, int, str]:
    """Numeric labels in numeric order (2 before 10), then the rest alphabetically."""
    return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)
