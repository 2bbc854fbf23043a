"""Iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011) for a train / validation split of
multi-label data: every label keeps close to the same share of its examples in the held-out part."""

from __future__ import annotations

import math

import numpy as np

from rnnclf.errors import RnnclfError


def _held_count(
    count: int, want_held: float, want_train: float, room_held: float, room_train: float, rng: np.random.Generator
) -> int:
    """How many of `count` examples go to the held-out part when each in turn goes to the part that most lacks
    the label (want), ties to the part that most lacks examples overall (room), then a coin; in closed form."""
    held, gap = 0, want_held - want_train
    if gap != 0:
        # the part that lacks the label more takes examples until it no longer does
        first = min(count, math.ceil(abs(gap)))
        held, count = (first if gap > 0 else 0), count - first
        room_held, room_train = (room_held - held, room_train) if gap > 0 else (room_held, room_train - first)
        gap = abs(gap) - first
    if count == 0:
        return held
    if gap != 0:
        # the other part now lacks the label by less than one: the two parts alternate, the other one first
        other_is_held = want_held < want_train
        return held + (count + 1) // 2 if other_is_held else held + count // 2
    # tied: the parts alternate, and an odd one out goes to the part with more room, else to a coin
    odd_to_held = room_held > room_train or (room_held == room_train and rng.random() < 0.5)
    return held + count // 2 + (count % 2 if odd_to_held else 0)


def _label_table(label_sets: list, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels of every (row, label) occurrence, duplicates within a row removed."""
    lengths = np.fromiter(map(len, label_sets), dtype=np.int64, count=len(label_sets))
    labels = np.fromiter((label for labels in label_sets for label in labels), dtype=np.int64, count=lengths.sum())
    rows = np.repeat(np.arange(len(label_sets)), lengths)
    if labels.size and (labels.min() < 0 or labels.max() >= num_labels):
        raise RnnclfError(f"label ids must be in [0, {num_labels}), got {labels.min()}..{labels.max()}")
    unique = np.unique(rows * num_labels + labels)
    return unique // num_labels, unique % num_labels


def _labels_of(rows: np.ndarray, starts: np.ndarray, labels_by_row: np.ndarray) -> np.ndarray:
    """All labels of `rows`, concatenated (a gather over the row-major occurrence table)."""
    lengths = starts[rows + 1] - starts[rows]
    offsets = np.repeat(starts[rows] - np.cumsum(lengths) + lengths, lengths)
    return labels_by_row[offsets + np.arange(lengths.sum())]


def iterative_stratified_split(
    label_sets: list[tuple[int, ...]] | list[list[int]], num_labels: int, fraction: float, seed: int
) -> np.ndarray:
    """A boolean mask of the rows held out (about `fraction` of them) by iterative stratification.

    With two or more rows both parts are non-empty, and a label with two or more examples keeps one in training.
    """
    if not 0.0 < fraction < 1.0:
        raise RnnclfError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    total = len(label_sets)
    occurrence_rows, occurrence_labels = _label_table(label_sets, num_labels)
    starts = np.searchsorted(occurrence_rows, np.arange(total + 1))
    # each label's rows in one random order, so which examples go where is the seed's choice
    rank = rng.permutation(total)
    by_label = np.lexsort((rank[occurrence_rows], occurrence_labels))
    rows_of_label = occurrence_rows[by_label]
    label_starts = np.searchsorted(occurrence_labels[by_label], np.arange(num_labels + 1))
    remaining = np.bincount(occurrence_labels, minlength=num_labels)
    want = np.stack([remaining * fraction, remaining * (1 - fraction)])  # per label: held-out, train
    room = np.array([total * fraction, total * (1 - fraction)])
    held, assigned = np.zeros(total, dtype=bool), np.zeros(total, dtype=bool)
    tie_order = rng.permutation(num_labels)
    while remaining.any():
        # the label with fewest remaining examples, ties in a random order
        label = np.argmin(np.where(remaining > 0, remaining * num_labels + tie_order, np.iinfo(np.int64).max))
        rows = rows_of_label[label_starts[label] : label_starts[label + 1]]
        rows = rows[~assigned[rows]]
        count = _held_count(len(rows), *want[:, label], *room, rng)
        for part, part_rows in enumerate((rows[:count], rows[count:])):
            part_labels = _labels_of(part_rows, starts, occurrence_labels)
            want[part] -= np.bincount(part_labels, minlength=num_labels)
            remaining -= np.bincount(part_labels, minlength=num_labels)
            room[part] -= len(part_rows)
        held[rows[:count]], assigned[rows] = True, True
    unlabeled = np.flatnonzero(~assigned)
    unlabeled = unlabeled[np.argsort(rank[unlabeled])]
    held[unlabeled[: _held_count(len(unlabeled), *room, *room, rng)]] = True
    return _keep_guarantees(held, occurrence_rows, occurrence_labels, num_labels, rng)


def _keep_guarantees(
    held: np.ndarray, rows: np.ndarray, labels: np.ndarray, num_labels: int, rng: np.random.Generator
) -> np.ndarray:
    """Move rows so that a label with two or more examples has one in training and, with two or more rows,
    neither part is empty."""
    counts = np.bincount(labels, minlength=num_labels)
    in_train = np.bincount(labels[~held[rows]], minlength=num_labels)
    for label in np.flatnonzero((counts >= 2) & (in_train == 0)):
        label_rows = rows[labels == label]
        # an earlier move may have fixed this label too
        if held[label_rows].all():
            held[rng.choice(label_rows)] = False
    if len(held) >= 2 and held.all():
        # only when no label has two examples: any row can go back to training
        held[rng.integers(len(held))] = False
    if len(held) >= 2 and not held.any():
        # any single held-out row leaves the other examples of its labels in training
        held[rng.integers(len(held))] = True
    return held
