"""A corpus: train / valid / test splits of (text, label), from files or a built-in corpus."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import compress

import numpy as np

from rnnclf.config import DataConfig
from rnnclf.data.readers import FileTexts, Split, read_split
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
    names = sorted(set(split.labels))
    code = {name: i for i, name in enumerate(names)}
    codes = np.fromiter((code[label] for label in split.labels), dtype=np.int32, count=len(split))
    held = np.zeros(len(split), dtype=bool)
    for i in range(len(names)):
        indices = np.flatnonzero(codes == i)
        rng.shuffle(indices)
        held[indices[: min(max(int(round(fraction * len(indices))), 1), len(indices) - 1)]] = True

    def pick(mask: np.ndarray, name: str) -> Split:
        texts = split.texts
        return Split(
            texts.subset(mask) if isinstance(texts, FileTexts) else list(compress(texts, mask)),
            list(compress(split.labels, mask)),
            f"{split.source} ({name})",
            np.asarray(split.rows, dtype=np.int64)[mask] if len(split.rows) else (),
        )

    return pick(~held, "train part"), pick(held, f"valid_fraction {fraction}")


def check_labels(split: Split, known: set[str], label_field: str) -> None:
    """A label in valid / test / eval data that training never saw is a mistake in the data."""
    for index, label in enumerate(split.labels):
        if label not in known:
            where = f"line {split.rows[index]}" if len(split.rows) else f"text {index + 1}"
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
        # the texts stay in their files until tokenizing reads them (FileTexts): memory for the labels only
        return read_split(path, text_field, label_field, fmt, keep_texts=False) if path is not None else None

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
