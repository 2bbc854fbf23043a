"""Word n-gram features for the wide (linear) head: a vocabulary of n-grams fitted on the training texts, and each
text as a sparse row of their TF-IDF weights (scikit-learn's TfidfVectorizer definitions: sublinear tf, smooth idf,
rows of unit length).

Words: NFKC, lowercased (tokenizer.lowercase), every run of non-word characters a separator, each word a 64-bit
hash of its bytes (words.py); an n-gram is a key mixed from its words' hashes. Everything is numpy over whole arrays
(a sorted array of the kept keys and searchsorted), never a Python loop over words. Kept: the n-grams of 1 to
wide.ngrams words in at least wide.min_df training texts, at most wide.max_features of them, the most frequent
first. Two different n-grams share a key with probability about n^2 / 2^65: never, in practice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from rnnclf import files
from rnnclf.data.sparse_rows import SparseRows
from rnnclf.data.words import mix, normalised_word_hashes
from rnnclf.errors import RnnclfError

WIDE_FEATURES = "wide_features.safetensors"
STEP = np.uint64(0x9E3779B97F4A7C15)  # the golden-ratio constant: keys of longer n-grams spread over 64 bits


@dataclass
class NgramFeatures:
    """A fitted n-gram vocabulary: the kept keys (sorted; feature i is the n-gram of keys[i]) and their idf."""

    keys: np.ndarray  # uint64, sorted
    idf: np.ndarray  # float32 (features,)
    ngrams: int
    sublinear_tf: bool = True
    lowercase: bool = True
    table: KeyTable | None = field(default=None, repr=False, compare=False)  # built at the first transform

    @property
    def size(self) -> int:
        return len(self.keys)

    def transform(self, texts: Iterable[str]) -> SparseRows:
        """Each text's TF-IDF row (unit length; a text with no known n-gram is an empty row)."""
        return self.transform_with_unknown(texts)[0]

    def transform_with_unknown(self, texts: Iterable[str]) -> tuple[SparseRows, np.ndarray]:
        """transform's rows, and each text's share of words that are no kept n-gram (1 for a text without words):
        the linear model's unknown words, found in the same pass."""
        texts = texts if isinstance(texts, list) else list(texts)
        hashes, counts = normalised_word_hashes(texts, self.lowercase)
        docs, keys = ngram_keys(hashes, counts, self.ngrams)
        if self.table is None:
            self.table = KeyTable(self.keys)
        features = self.table.find(keys)
        found = features >= 0
        words = len(hashes)  # ngram_keys puts the single words first
        known = np.bincount(docs[:words][found[:words]], minlength=len(texts))
        unknown = np.where(counts > 0, 1 - known / np.maximum(counts, 1), 1.0)
        return tfidf_rows(docs[found], features[found], self.idf, len(texts), self.sublinear_tf), unknown

    def save(self, folder: Path) -> None:
        """RUN/wide_features.safetensors: the keys, their idf, and the settings that make them."""
        settings = {
            "ngrams": str(self.ngrams),
            "sublinear_tf": str(self.sublinear_tf),
            "lowercase": str(self.lowercase),
        }
        tensors = {"keys": self.keys.view(np.int64), "idf": self.idf}
        files.write_atomic(folder / WIDE_FEATURES, safetensors.numpy.save(tensors, metadata=settings))

    @classmethod
    def load(cls, folder: Path) -> NgramFeatures:
        path = folder / WIDE_FEATURES
        try:
            with safetensors.safe_open(str(path), framework="numpy") as saved:
                settings = saved.metadata() or {}
                keys, idf = saved.get_tensor("keys").view(np.uint64), saved.get_tensor("idf")
            flags = {name: settings[name] == "True" for name in ("sublinear_tf", "lowercase")}
            return cls(keys, idf, int(settings["ngrams"]), **flags)
        except Exception as exc:  # safetensors raises its own errors and plain OSError / KeyError
            raise RnnclfError(
                f"{path}: the wide head's n-grams are unreadable ({exc}); the run directory is damaged"
            ) from None


class KeyTable:
    """The kept keys in an open-addressing hash table (linear probing, at most a quarter full): a key's feature index
    in little more than one vectorised lookup, where a binary search (searchsorted) takes twenty."""

    def __init__(self, keys: np.ndarray) -> None:
        bits = max(4, int(np.ceil(np.log2(4 * len(keys) + 1))))
        self.mask, self.shift = (1 << bits) - 1, np.uint64(64 - bits)
        self.features = np.full(1 << bits, -1, dtype=np.int64)  # each slot's feature, -1 when empty
        self.keys = np.zeros(1 << bits, dtype=np.uint64)
        home, pending, step = self.home(keys), np.arange(len(keys)), 0
        while len(pending):  # round r: every key not placed yet tries its home + r, the first of a slot's takers wins
            slots = (home[pending] + step) & self.mask
            free = np.flatnonzero(self.features[slots] < 0)
            taken, first = np.unique(slots[free], return_index=True)
            winners = pending[free[first]]
            self.features[taken], self.keys[taken] = winners, keys[winners]
            placed = np.zeros(len(pending), dtype=bool)
            placed[free[first]] = True
            pending, step = pending[~placed], step + 1

    def home(self, keys: np.ndarray) -> np.ndarray:
        return (keys >> self.shift).astype(np.int64)  # the top bits: keys are well-mixed hashes

    def find(self, queries: np.ndarray) -> np.ndarray:
        """Each query's feature index, or -1. Most queries end at their home slot (the table is at most a quarter
        full): one vectorised round for all, then rounds for the few that probe on."""
        slots = self.home(queries)
        occupant = self.features[slots]
        hit = (occupant >= 0) & (self.keys[slots] == queries)
        found = np.where(hit, occupant, -1)
        pending, step = np.flatnonzero((occupant >= 0) & ~hit), 1
        while len(pending):
            slots = (self.home(queries[pending]) + step) & self.mask
            occupant = self.features[slots]
            hit = (occupant >= 0) & (self.keys[slots] == queries[pending])
            found[pending[hit]] = occupant[hit]
            pending, step = pending[(occupant >= 0) & ~hit], step + 1
        return found


def tfidf_rows(docs: np.ndarray, features: np.ndarray, idf: np.ndarray, texts: int, sublinear: bool) -> SparseRows:
    """Sparse rows from every (text, feature) occurrence: counts, (1 + log) tf, times idf, unit length."""
    size = len(idf)
    pairs, counts = np.unique(docs * size + features, return_counts=True)
    docs, features = pairs // size, pairs % size
    tf = 1.0 + np.log(counts) if sublinear else counts.astype(np.float64)
    values = tf * idf[features]
    norms = np.sqrt(np.bincount(docs, weights=values**2, minlength=texts))
    values = values / np.maximum(norms[docs], 1e-12)
    offsets = np.zeros(texts + 1, dtype=np.int64)
    np.cumsum(np.bincount(docs, minlength=texts), out=offsets[1:])
    return SparseRows(offsets, features, values.astype(np.float32))


def ngram_keys(hashes: np.ndarray, counts: np.ndarray, ngrams: int) -> tuple[np.ndarray, np.ndarray]:
    """(text index, key) of every n-gram of 1 to `ngrams` consecutive words within each text."""
    docs = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    all_docs, all_keys, keys = [docs], [hashes], hashes
    with np.errstate(over="ignore"):
        for n in range(2, ngrams + 1):
            # the n-gram starting at i: the key of its first n - 1 words mixed with word i + n - 1, within one text
            keys = mix(keys[:-1] * STEP + hashes[n - 1 :] + np.uint64(n))
            inside = docs[: len(keys)] == docs[n - 1 :]
            all_docs.append(docs[: len(keys)][inside])
            all_keys.append(keys[inside])
    return np.concatenate(all_docs), np.concatenate(all_keys)


def fit_ngrams(
    texts: Iterable[str],
    ngrams: int = 2,
    min_df: int = 2,
    max_features: int = 500_000,
    sublinear_tf: bool = True,
    lowercase: bool = True,
) -> NgramFeatures:
    """The n-gram vocabulary of the training texts, and each kept n-gram's smooth idf."""
    texts = texts if isinstance(texts, list) else list(texts)
    docs, keys = ngram_keys(*normalised_word_hashes(texts, lowercase), ngrams)
    unique, df, total = document_frequencies(docs, keys)
    frequent = df >= min_df
    unique, df, total = unique[frequent], df[frequent], total[frequent]
    if len(unique) > max_features:  # the most frequent n-grams over the corpus, as scikit-learn's max_features
        keep = np.sort(np.lexsort((unique, -total))[:max_features])
        unique, df = unique[keep], df[keep]
    idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    return NgramFeatures(unique, idf.astype(np.float32), ngrams, sublinear_tf, lowercase)


def document_frequencies(docs: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each distinct key (sorted), the number of texts it is in, and its number of occurrences."""
    order = np.lexsort((docs, keys))
    keys, docs = keys[order], docs[order]
    new_key = np.ones(len(keys), dtype=bool)
    new_key[1:] = keys[1:] != keys[:-1]
    new_pair = new_key.copy()
    new_pair[1:] |= docs[1:] != docs[:-1]
    starts = np.flatnonzero(new_key)
    total = np.diff(np.append(starts, len(keys)))
    df = np.add.reduceat(new_pair.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
    return keys[starts], df, total
