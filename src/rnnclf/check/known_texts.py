"""Texts to recognise again among many others read in chunks: exact copies (after the data check's normalisation)
and near-duplicates (its MinHash: Jaccard of 2-word shingles >= 0.6, candidates by LSH banding, confirmed exactly).
rnnclf suggest skips the pool's texts that a run has already (its training, validation and test texts).

The known texts are hashed once, each band's keys sorted once; every chunk of new texts is then hashed and looked up
band by band, so a pool of any size is checked in one pass with memory for one chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnclf.check import minhash
from rnnclf.check.findings import normalise


class KnownTexts:
    """The texts of a run, ready to be recognised: .seen(texts) says which of some new texts are among them."""

    def __init__(self, texts: Sequence[str]) -> None:
        normal = [normalise(text) for text in texts]
        self.exact = set(normal)
        kept = [text for text in normal if text]
        self.shingled = minhash.shingles(kept)
        self.signature = minhash.signatures(self.shingled)
        keys = minhash.band_keys(self.signature)
        self.bands = [np.unique(keys[:, band], return_index=True) for band in range(keys.shape[1])]

    def __len__(self) -> int:
        return len(self.signature)

    def seen(self, texts: Sequence[str], normal: Sequence[str] | None = None) -> np.ndarray:
        """(len(texts),) bool: an exact copy or a near-duplicate of a known text (`normal`: the texts already
        normalised as the data check does)."""
        normal = [normalise(text) for text in texts] if normal is None else normal
        found = np.fromiter((text in self.exact for text in normal), dtype=bool, count=len(normal))
        rest = np.flatnonzero(~found & np.fromiter((bool(text) for text in normal), dtype=bool, count=len(normal)))
        if not rest.size or not len(self):
            return found
        shingled = minhash.shingles([normal[i] for i in rest])
        signature = minhash.signatures(shingled)
        keys = minhash.band_keys(signature)
        left, right = [], []
        for band, (known_keys, first) in enumerate(self.bands):
            at = np.searchsorted(known_keys, keys[:, band]).clip(max=len(known_keys) - 1)
            hit = known_keys[at] == keys[:, band]
            left.append(np.flatnonzero(hit))
            right.append(first[at[hit]])
        pairs = np.unique(np.stack([np.concatenate(left), np.concatenate(right)], axis=1), axis=0)
        close = (signature[pairs[:, 0]] == self.signature[pairs[:, 1]]).mean(
            axis=1
        ) >= minhash.THRESHOLD - minhash.SCREEN
        for query, known in pairs[close].tolist():
            if (
                not found[rest[query]]
                and minhash.jaccard(shingled.of(query), self.shingled.of(known)) >= minhash.THRESHOLD
            ):
                found[rest[query]] = True
        return found
