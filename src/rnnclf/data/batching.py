"""Length-bucketed batches: padding stays small, and every epoch's order is new but seeded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from rnnclf.data.tokenizer import PAD_ID, EncodedTexts

POOL_BATCHES = 50  # sort within pools of this many batches: little padding, yet random batches
_TARGET_DTYPE = {1: np.int64, 2: np.float32}  # class indices for cross-entropy; 0 / 1 rows for BCE


def bucket_by_length(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, window: int | None = None
) -> list[np.ndarray]:
    """Batches of indices, each of similar lengths, in a seeded order that differs per epoch.

    Shuffle, cut into pools of POOL_BATCHES batches, sort each pool by length, cut into batches,
    then shuffle the batches. Every index appears in exactly one batch. With a `window` (model.chunk), a batch
    holds texts up to `batch_size` windows of that many tokens (at least one text), so its size is bounded.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    pool = batch_size * POOL_BATCHES
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(cut(chunk, lengths, batch_size, window))
    return [batches[i] for i in rng.permutation(len(batches))]


def sequential_batches(lengths: np.ndarray, batch_size: int, window: int | None = None) -> list[np.ndarray]:
    """Batches for evaluation: sorted by length for little padding; callers restore the order."""
    return cut(np.argsort(lengths, kind="stable"), lengths, batch_size, window)


def cut(order: np.ndarray, lengths: np.ndarray, batch_size: int, window: int | None) -> list[np.ndarray]:
    """`order` in consecutive batches: of batch_size texts, or with a window, of at most batch_size windows."""
    if window is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    windows = -(-lengths[order] // window)
    batches, first, total = [], 0, 0
    for position, count in enumerate(windows.tolist()):
        if total and total + count > batch_size:
            batches.append(order[first:position])
            first, total = position, 0
        total += count
    if first < len(order):
        batches.append(order[first:])
    return batches


@dataclass
class Batch:
    ids: torch.Tensor  # (batch, max_len) int64, PAD_ID after each text's end
    lengths: torch.Tensor  # (batch,) int64, on the CPU (pack_padded_sequence wants them there)
    labels: torch.Tensor | None  # (batch,) int64 label indices; multi-label: (batch, labels) float32 of 0 / 1
    index: np.ndarray  # positions of these texts in the split
    wide: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # n-gram indices, row offsets, values
    teacher: torch.Tensor | None = None  # train.teacher: the teacher's logits of these texts (batch, labels)
    gold: torch.Tensor | None = None  # ... and which of them have a gold label (batch,) bool

    def wide_inputs(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The wide head's inputs on `device` (none for a model without one)."""
        return () if self.wide is None else tuple(part.to(device, non_blocking=True) for part in self.wide)

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())


def collate(encoded: EncodedTexts, index: np.ndarray, labels: np.ndarray | None = None) -> Batch:
    """Pad the texts at `index` to the longest of them."""
    starts = encoded.offsets[index]
    lengths = encoded.offsets[index + 1] - starts
    width = int(lengths.max())
    # one vectorised gather: position j of row r reads ids[start_r + j] where j < length_r
    positions = np.arange(width)
    mask = positions[None, :] < lengths[:, None]
    gather = np.where(mask, starts[:, None] + positions[None, :], 0)
    ids = np.where(mask, encoded.ids[gather], PAD_ID)
    wide = None
    if encoded.wide is not None:
        rows = encoded.wide.take(index)
        wide = tuple(torch.from_numpy(part) for part in (rows.indices, rows.offsets[:-1], rows.values))
    return Batch(
        ids=torch.from_numpy(ids.astype(np.int64)),
        lengths=torch.from_numpy(lengths.astype(np.int64)),
        labels=None if labels is None else torch.from_numpy(labels[index].astype(_TARGET_DTYPE[labels.ndim])),
        index=index,
        wide=wide,
    )


def iterate(encoded: EncodedTexts, batches: list[np.ndarray], labels: np.ndarray | None = None) -> Iterator[Batch]:
    for index in batches:
        yield collate(encoded, index, labels)
