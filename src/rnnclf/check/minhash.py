"""Near-duplicate texts across splits: MinHash over word shingles with LSH banding, vectorised in numpy.

Linear in the data: every text is hashed once; each band sorts the reference split's keys once; every query text
gets at most one candidate per band; candidates are screened by their signature estimate and confirmed by the
exact Jaccard similarity of their shingle sets. Hashes are stable (a polynomial hash of each word's bytes, fixed
seeds), unlike Python's salted hash(), so a report is the same on every run.

Memory: what is kept is one 8-byte hash per shingle (about one per word) and PERMUTATIONS 4-byte values per text;
the working arrays are bounded by CHAR_CHUNK characters and SHINGLE_CHUNK shingles at a time, whatever the texts'
lengths (a single text longer than CHAR_CHUNK is hashed alone, so its words' arrays are as long as it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rnnclf.data.words import mix, text_chunks, word_hashes

SHINGLE = 2  # words per shingle: on short texts one changed word still leaves most bigrams shared
PERMUTATIONS = 60
BANDS, ROWS = 20, 3  # a pair at Jaccard 0.6 shares a band with probability 1 - (1 - 0.6^3)^20 = 0.99
THRESHOLD = 0.6  # exact Jaccard of the shingle sets at or above which two texts are near-duplicates
SCREEN = 0.2  # candidates whose estimate is this far below THRESHOLD are dropped (over 3 standard errors)
SHINGLE_CHUNK = 125_000  # shingles signed at a time, whatever the texts: 30 MB of (shingles x permutations) uint32
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class Shingles:
    """The shingle hashes of many texts, flat: text i has hashes[offsets[i]:offsets[i + 1]] (none if empty)."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len(texts) + 1

    def of(self, index: int) -> set[int]:
        return set(self.hashes[self.offsets[index] : self.offsets[index + 1]].tolist())


def shingles(texts: Sequence[str], size: int = SHINGLE) -> Shingles:
    """Hashes of the runs of `size` consecutive words of each (already normalised) text; a text with fewer words
    is one shingle of all of them. Works through the texts in chunks of CHAR_CHUNK characters, so the working
    arrays stay bounded; the result holds one 8-byte hash per shingle."""
    parts = [_chunk_shingles(texts[first:last], size) for first, last in text_chunks(texts)]
    if not parts:
        return Shingles(np.zeros(0, dtype=np.uint64), np.zeros(1, dtype=np.int64))
    counts = np.concatenate([np.diff(part.offsets) for part in parts])
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Shingles(np.concatenate([part.hashes for part in parts]), offsets)


def _chunk_shingles(texts: Sequence[str], size: int) -> Shingles:
    hashed, counts = word_hashes(texts)
    ends = np.repeat(np.cumsum(counts), counts)  # each word position's text end
    position = np.arange(len(hashed), dtype=np.int64)
    with np.errstate(over="ignore"):
        combined = hashed.copy()
        for step in range(1, size):
            following = np.zeros_like(hashed)
            following[: len(hashed) - step] = hashed[step:]
            inside = position + step < ends
            combined = combined * np.uint64(0x9E3779B97F4A7C15) + np.where(inside, following, np.uint64(step))
        combined = mix(combined)
    starts = ends - np.repeat(counts, counts)
    keep = (position + size <= ends) | ((position == starts) & (np.repeat(counts, counts) < size))
    per_text_count = np.where(counts >= size, counts - size + 1, np.minimum(counts, 1))
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(per_text_count, out=offsets[1:])
    return Shingles(combined[keep], offsets)


def _permutations(count: int = PERMUTATIONS, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**31, size=count, dtype=np.uint32) * np.uint32(2) + np.uint32(1)  # odd: a bijection
    b = rng.integers(0, 2**32, size=count, dtype=np.uint32)
    return a, b


def signatures(shingled: Shingles, count: int = PERMUTATIONS) -> np.ndarray:
    """(texts, count) uint32 MinHash signatures: h_p(x) = a_p x + b_p mod 2^32 of each shingle's mixed 32-bit hash,
    a permutation of the 32-bit values per p. 32-bit arithmetic moves half the memory of 64-bit, and memory is the
    cost here. A text without shingles keeps the all-ones signature (the caller leaves empty texts out).

    SHINGLE_CHUNK shingles at a time, cut wherever the count falls (inside a long text too): each chunk's minima
    are folded into the texts it touches, so the working memory is bounded whatever the texts' lengths."""
    a, b = _permutations(count)
    offsets = shingled.offsets
    out = np.full((len(offsets) - 1, count), np.iinfo(np.uint32).max, dtype=np.uint32)
    for lo in range(0, int(offsets[-1]), SHINGLE_CHUNK):
        hi = min(lo + SHINGLE_CHUNK, int(offsets[-1]))
        values = np.multiply.outer((shingled.hashes[lo:hi] >> np.uint64(32)).astype(np.uint32), a)  # wraps
        values += b
        texts = np.arange(np.searchsorted(offsets, lo, side="right") - 1, np.searchsorted(offsets, hi, side="left"))
        texts = texts[offsets[texts + 1] > offsets[texts]]  # the texts with shingles in [lo, hi)
        starts = np.maximum(offsets[texts], lo) - lo
        out[texts] = np.minimum(out[texts], np.minimum.reduceat(values, starts, axis=0))
    return out


def band_keys(signature: np.ndarray) -> np.ndarray:
    """(texts, BANDS) uint64: one hash of each band's ROWS signature values."""
    keys = np.zeros((len(signature), BANDS), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for row in range(ROWS):
            keys = keys * np.uint64(0x100000001B3) + signature[:, row : BANDS * ROWS : ROWS].astype(np.uint64)
        return mix(keys)


def estimate(signature: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The MinHash estimate of the Jaccard similarity of each pair (left[i], right[i])."""
    return (signature[left] == signature[right]).mean(axis=1)


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def candidates(keys: np.ndarray, queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (query, reference) that share a band: per band, each query meets at most one reference (the first in
    its bucket), so the pairs are at most BANDS per query."""
    found_q, found_r = [], []
    if not queries.size or not references.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for band in range(keys.shape[1]):
        reference_keys, first = np.unique(keys[references, band], return_index=True)
        query_keys = keys[queries, band]
        at = np.searchsorted(reference_keys, query_keys).clip(max=len(reference_keys) - 1)
        hit = reference_keys[at] == query_keys
        found_q.append(queries[hit])
        found_r.append(references[first[at[hit]]])
    pairs = np.unique(np.stack([np.concatenate(found_q), np.concatenate(found_r)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def near_duplicates(
    shingled: Shingles, signature: np.ndarray, keys: np.ndarray, queries: np.ndarray, references: np.ndarray
) -> dict[int, tuple[int, float]]:
    """For each query text with a near-duplicate among the references: (that reference, exact Jaccard), the most
    similar of its candidates."""
    if not queries.size or not references.size:
        return {}
    left, right = candidates(keys, queries, references)
    close = estimate(signature, left, right) >= THRESHOLD - SCREEN
    best: dict[int, tuple[int, float]] = {}
    for query, reference in zip(left[close].tolist(), right[close].tolist(), strict=True):
        similarity = jaccard(shingled.of(query), shingled.of(reference))
        if similarity >= THRESHOLD and similarity > best.get(query, (0, 0.0))[1]:
            best[query] = (reference, similarity)
    return best


def settings() -> dict:
    return {
        "similarity": f"Jaccard similarity of the sets of {SHINGLE}-word shingles of the normalised texts",
        "shingle_words": SHINGLE,
        "permutations": PERMUTATIONS,
        "bands": BANDS,
        "rows_per_band": ROWS,
        "jaccard_threshold": THRESHOLD,
        "confirmed": "exact Jaccard of each candidate pair (MinHash + LSH only find the candidates)",
    }
