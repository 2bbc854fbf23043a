"""A corpus: train / valid / test splits of (text, label), from files or a built-in corpus."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from itertools import compress

import numpy as np

from rnnclf.config.schema import DataConfig
from rnnclf.data.readers import FileTexts, LabelFormat, Split, read_split
from rnnclf.errors import RnnclfError


@dataclass
class Corpus:
    train: Split
    valid: Split
    test: Split | None
    labels: list[str]  # label names in index order (sorted, so the order does not depend on the file)
    multi_label: bool = False


def label_names(split: Split, multi_label: bool) -> set[str]:
    """Every label name in a split."""
    if not multi_label:
        return set(split.labels)
    return {label for labels in set(split.labels) for label in labels}


def stratified_split(split: Split, fraction: float, seed: int, multi_label: bool = False) -> tuple[Split, Split]:
    """Carve `fraction` of each class out of `split` (seeded); classes with one example stay in train.
    Multi-label: iterative stratification, so that rare labels are represented in both parts."""
    held = _held_multi_label(split, fraction, seed) if multi_label else _held_single_label(split, fraction, seed)
    return subset(split, ~held, "train part"), subset(split, held, f"valid_fraction {fraction}")


def subset(split: Split, mask: np.ndarray, name: str) -> Split:
    """The rows of a split where `mask` is true, in file order, named after the part they form."""
    texts = split.texts
    return Split(
        texts.subset(mask) if isinstance(texts, FileTexts) else list(compress(texts, mask)),
        list(compress(split.labels, mask)),
        f"{split.source} ({name})",
        np.asarray(split.rows, dtype=np.int64)[mask] if len(split.rows) else (),
    )


def fold_ids(split: Split, folds: int, seed: int, multi_label: bool = False) -> np.ndarray:
    """Each row's fold, 0 to folds - 1: stratified (every class spread evenly over the folds), seeded; for
    multi-label data, iterative stratification taking one fold at a time out of the rest."""
    if multi_label:
        return _multi_label_folds(split, folds, seed)
    rng = np.random.default_rng(seed)
    codes = np.unique(np.asarray(split.labels, dtype=object).astype(str), return_inverse=True)[1]
    ids, start = np.empty(len(split), dtype=np.int64), 0
    for code in range(codes.max() + 1):
        rows = rng.permutation(np.flatnonzero(codes == code))
        ids[rows] = (start + np.arange(len(rows))) % folds  # each class continues where the last left off
        start = (start + len(rows)) % folds
    return ids


def _multi_label_folds(split: Split, folds: int, seed: int) -> np.ndarray:
    from rnnclf.data.stratify import iterative_stratified_split

    names = sorted(label_names(split, True))
    code = {name: i for i, name in enumerate(names)}
    label_sets = [tuple(code[label] for label in labels) for labels in split.labels]
    ids, rest = np.full(len(split), folds - 1, dtype=np.int64), np.arange(len(split))
    for fold in range(folds - 1):
        held = iterative_stratified_split([label_sets[i] for i in rest], len(names), 1 / (folds - fold), seed + fold)
        ids[rest[held]], rest = fold, rest[~held]
    return ids


def check_folds(split: Split, folds: int, multi_label: bool) -> None:
    """K folds need K texts of every class (single-label): each fold then holds every class."""
    if multi_label:
        if folds > len(split):
            raise RnnclfError(f"{split.source}: {len(split)} texts cannot make {folds} folds")
        return
    counts: dict[str, int] = {}
    for label in split.labels:
        counts[label] = counts.get(label, 0) + 1
    label, count = min(counts.items(), key=lambda item: (item[1], item[0]))
    if folds > count:
        raise RnnclfError(
            f"{split.source}: {folds} folds, and class '{label}' has {count} text{'s' if count != 1 else ''}; every "
            f"fold needs one of each class: use at most {count} folds"
        )


def _held_single_label(split: Split, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    names = sorted(set(split.labels))
    code = {name: i for i, name in enumerate(names)}
    codes = np.fromiter((code[label] for label in split.labels), dtype=np.int32, count=len(split))
    held = np.zeros(len(split), dtype=bool)
    for i in range(len(names)):
        indices = np.flatnonzero(codes == i)
        rng.shuffle(indices)
        held[indices[: min(max(int(round(fraction * len(indices))), 1), len(indices) - 1)]] = True
    return held


def _held_multi_label(split: Split, fraction: float, seed: int) -> np.ndarray:
    from rnnclf.data.stratify import iterative_stratified_split

    names = sorted(label_names(split, True))
    code = {name: i for i, name in enumerate(names)}
    label_sets = [tuple(code[label] for label in labels) for labels in split.labels]
    return iterative_stratified_split(label_sets, len(names), fraction, seed)


def label_targets(labels: list, names: list[str], multi_label: bool) -> np.ndarray:
    """Label indices (N,), or for multi-label a 0 / 1 matrix (N, labels), of a split's labels."""
    index = {label: i for i, label in enumerate(names)}
    if not multi_label:
        return np.array([index[label] for label in labels], dtype=np.int64)
    targets = np.zeros((len(labels), len(names)), dtype=np.uint8)
    for row, text_labels in enumerate(labels):
        targets[row, [index[label] for label in text_labels]] = 1
    return targets


def check_labels(split: Split, known: set[str], label_field: str) -> None:
    """A label in valid / test / eval data that training never saw is a mistake in the data."""
    for index, labels in enumerate(split.labels):
        for label in (labels,) if isinstance(labels, str) else labels:
            if label in known:
                continue
            where = f"line {split.rows[index]}" if len(split.rows) else f"text {index + 1}"
            raise RnnclfError(
                f"{split.source}: {where}: label '{label}' in '{label_field}' was never seen in training "
                f"(known: {', '.join(sorted(known)[:10])}{', ...' if len(known) > 10 else ''})"
            )


def carve_seed(config: DataConfig, seed: int) -> int:
    """The seed that carves validation out of train: data.valid_seed, else the run's train.seed."""
    return seed if config.valid_seed is None else config.valid_seed


def load_corpus(config: DataConfig, seed: int, labels: Collection[str] = ()) -> Corpus:
    """Read every split named by the data config, carve validation if needed (seeded by carve_seed), and check the
    labels; `labels`: those the model has already (an update of an earlier classifier), known besides the data's."""
    label_field = data_fields(config)[2]
    train, valid = read_named_split(config, "train"), read_named_split(config, "valid")
    # cross-validation's folds know every label of the training split: a multi-label fold may hold out every text
    # of a rare label, and each fold's run then still has its output (never seen positive in its training part)
    known = label_names(train, config.multi_label) | set(labels)
    if config.folds:  # cross-validation: one fold of the training split is the test split, the others train
        train, test = split_folds(train, config)
    else:
        test = read_named_split(config, "test")
    if len(known) < (1 if config.multi_label else 2):
        raise RnnclfError(
            f"{train.source}: no labels in '{label_field}'; a multi-label classifier needs at least one"
            if config.multi_label
            else f"{train.source}: only one class ('{train.labels[0]}') in '{label_field}'; a classifier needs at "
            "least two"
        )
    if valid is None:
        train, valid = stratified_split(train, config.valid_fraction, carve_seed(config, seed), config.multi_label)
    for split in (valid, test):
        if split is not None:
            check_labels(split, known, label_field)
    return Corpus(train, valid, test, sorted(known, key=_natural), config.multi_label)


def read_named_split(config: DataConfig, name: str) -> Split | None:
    """The split `name` (train, valid, test) of the config's files or built-in corpus, None when there is none;
    its texts stay in their file until tokenizing reads them (FileTexts): memory for the labels only."""
    fmt, text_field, label_field = data_fields(config)
    if config.dataset is not None:
        from rnnclf.data.builtin import fetch

        path = fetch(config.dataset).get(name)
    else:
        path = getattr(config, name)
    if path is None:
        return None
    return read_split(path, text_field, label_field, fmt, keep_texts=False, label_format=label_format(config))


def split_folds(train: Split, config: DataConfig) -> tuple[Split, Split]:
    """Cross-validation: the training split without fold data.fold, and that fold (checked: texts enough)."""
    check_folds(train, config.folds, config.multi_label)
    held = fold_ids(train, config.folds, config.fold_seed, config.multi_label) == config.fold
    return subset(train, ~held, f"folds but {config.fold}"), subset(
        train, held, f"fold {config.fold} of {config.folds}"
    )


def data_fields(config: DataConfig) -> tuple[str, str, str]:
    """The format, text field and label field of the config's data files (a built-in corpus has its own)."""
    if config.dataset is None:
        return config.format, config.text_field, config.label_field
    from rnnclf.data.builtin import CORPORA

    info = CORPORA.get(config.dataset)
    corpus_multi_label = bool(info and getattr(info, "multi_label", False))
    if info is not None and corpus_multi_label != config.multi_label:
        raise RnnclfError(
            f"data.dataset {config.dataset} is a {'multi' if corpus_multi_label else 'single'}-label corpus; set "
            f"data.multi_label: {'true' if corpus_multi_label else 'false'}"
        )
    return "jsonl", "text", "labels" if corpus_multi_label else "label"


def label_format(config: DataConfig) -> LabelFormat:
    return LabelFormat(config.multi_label, config.label_separator)


def _natural(label: str) -> tuple[int, int, str]:
    """Numeric labels in numeric order (2 before 10), then the rest alphabetically."""
    return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)
