"""Words as 64-bit hashes, in numpy: a polynomial hash of each word's UTF-8 bytes over a whole chunk of texts at
once, with no Python call per word. Stable across runs and machines (unlike Python's salted hash()). Used by the
data check's MinHash (check/minhash.py) and the wide head's n-grams (ngrams.py)."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

_BASE = 0x100000001B3  # odd: invertible mod 2^64
CHAR_CHUNK = 1_000_000  # characters of text hashed at a time (tens of bytes of numpy arrays each)


_POWERS: dict[int, np.ndarray] = {}  # by base: the longest run of powers computed so far


def _powers(base: int, count: int) -> np.ndarray:
    """base^0 .. base^(count - 1) mod 2^64 (computed once per base and length, then sliced)."""
    known = _POWERS.get(base)
    if known is None or len(known) < count:
        powers = np.full(max(count, CHAR_CHUNK + 2), base, dtype=np.uint64)
        powers[0] = 1
        known = _POWERS[base] = np.cumprod(powers, dtype=np.uint64)
    return known[:count]


def text_chunks(texts: Sequence[str]) -> list[tuple[int, int]]:
    """(first, last) ranges of consecutive texts of about CHAR_CHUNK characters each; a longer text is a range alone."""
    sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1
    ends = np.cumsum(sizes)
    cuts = [0]
    while cuts[-1] < len(texts):
        done = ends[cuts[-1] - 1] if cuts[-1] else 0
        cuts.append(max(int(np.searchsorted(ends, done + CHAR_CHUNK, side="right")), cuts[-1] + 1))
    return list(itertools.pairwise(cuts))


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(a stable 64-bit hash of every word, words per text) of normalised texts (words split by single spaces).

    A polynomial hash of each word's UTF-8 bytes from prefix sums, all in numpy: no Python call per word. The
    arrays are as long as the texts' bytes: call it on a chunk of texts (text_chunks)."""
    if not texts:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return joined_word_hashes("\n".join(texts), len(texts))


def joined_word_hashes(joined: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """word_hashes of `count` texts joined by newlines (no newline inside a text)."""
    return byte_word_hashes(np.frombuffer((joined + "\n").encode("utf-8"), dtype=np.uint8), count)


def byte_word_hashes(data: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """word_hashes of the UTF-8 bytes of `count` texts, each ended by a newline, words split by spaces."""
    with np.errstate(over="ignore"):
        prefix = np.zeros(len(data) + 1, dtype=np.uint64)
        np.cumsum(data * _powers(_BASE, len(data)), out=prefix[1:], dtype=np.uint64)
        ends = np.flatnonzero((data == 32) | (data == 10))  # each word ends at a space or a text's end
        starts = np.concatenate([[0], ends[:-1] + 1])
        word = ends > starts  # an empty text is an empty segment
        text = np.cumsum(data == 10)[ends] - (data[ends] == 10)
        value = (prefix[ends] - prefix[starts]) * _powers(pow(_BASE, -1, 2**64), len(data))[starts]
        value ^= (ends - starts).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return mix(value[word]), np.bincount(text[word], minlength=count).astype(np.int64)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


SEPARATORS = re.compile(r"[^\w\n]+|_+")  # every run of characters that are not letters or digits (but newlines)
# the same for ASCII bytes, as tables: which bytes belong to words (letters, digits, any byte of a non-ASCII
# character), and each byte lowercased
WORD_BYTES = np.zeros(256, dtype=bool)
for low, high in ((48, 57), (65, 90), (97, 122), (128, 255)):
    WORD_BYTES[low : high + 1] = True
LOWER_BYTES = np.arange(256, dtype=np.uint8)
LOWER_BYTES[65:91] += 32


def normalised_word_hashes(texts: Sequence[str], lowercase: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every word, words per text): NFKC, lowercased, every run of non-word characters a separator.
    The whole chunk is normalised as one string (C loops, not a Python call per text or word), CHAR_CHUNK
    characters of texts at a time; a chunk of ASCII text (NFKC leaves it as it is) as bytes, with two tables."""
    hashes, counts = [np.zeros(0, dtype=np.uint64)], [np.zeros(0, dtype=np.int64)]
    for first, last in text_chunks(texts):
        joined = "\n".join(text.replace("\n", " ") for text in texts[first:last]) + "\n"
        if joined.isascii():
            data = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            data = LOWER_BYTES[data] if lowercase else data
            data = np.where(WORD_BYTES[data] | (data == 10), data, np.uint8(32))
        else:
            joined = unicodedata.normalize("NFKC", joined)
            joined = SEPARATORS.sub(" ", joined.lower() if lowercase else joined)
            data = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
        part_hashes, part_counts = byte_word_hashes(data, last - first)
        hashes.append(part_hashes)
        counts.append(part_counts)
    return np.concatenate(hashes), np.concatenate(counts)
