"""Texts as sparse rows of features (the wide head's n-grams): compressed sparse rows, sliceable like EncodedTexts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SparseRows:
    """Texts as sparse rows: text i's features are indices[offsets[i]:offsets[i+1]] with those values."""

    offsets: np.ndarray  # int64 (texts + 1,)
    indices: np.ndarray  # int64 (nonzeros,)
    values: np.ndarray  # float32 (nonzeros,)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def take(self, index: np.ndarray) -> SparseRows:
        starts, ends = self.offsets[index], self.offsets[index + 1]
        counts = ends - starts
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        positions = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
        return SparseRows(offsets, self.indices[positions], self.values[positions])


def concatenate_rows(parts: list[SparseRows]) -> SparseRows:
    """The rows of every part, in order."""
    counts = np.concatenate([np.diff(part.offsets) for part in parts])
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    indices = np.concatenate([part.indices[part.offsets[0] : part.offsets[-1]] for part in parts])
    values = np.concatenate([part.values[part.offsets[0] : part.offsets[-1]] for part in parts])
    return SparseRows(offsets, indices, values)
