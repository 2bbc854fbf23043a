"""Sections tokenize and prepare: rnnclf.data.tokenizer.encode on many short documents next to the notebook's
tokenizer, and a cold prepare() (empty token cache) against a cached one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.data.builtin import cache_dir, fetch
from rnnclf.data.readers import read_split
from rnnclf.data.token_cache import prepare
from rnnclf.data.tokenizer import encode, fit_tokenizer

from .common import TARGETS, Plan, num, reference_config, say, token_cache
from .pipelines import basic_english, naive_vocabulary


def short_documents(texts: list[str], count: int, seed: int = 0) -> list[str]:
    """`count` documents of 10-20 consecutive words taken from random places in `texts`."""
    rng = np.random.default_rng(seed)
    word_lists = [words for words in (text.split() for text in texts) if len(words) >= 20]
    docs = []
    for choice, size in zip(rng.integers(0, len(word_lists), count), rng.integers(10, 21, count), strict=True):
        words = word_lists[choice]
        start = int(rng.integers(0, len(words) - size + 1))
        docs.append(" ".join(words[start : start + size]))
    return docs


def bench_tokenize(plan: Plan) -> dict[str, Any]:
    """Section 5a: rnnclf.data.tokenizer.encode on many short documents, next to basic_english + a dict lookup."""
    train_texts = read_split(fetch("r8")["train"]).texts
    tokenizer = fit_tokenizer(train_texts, 400, kind="word")
    docs = short_documents(train_texts, plan.docs)
    encode(tokenizer, docs[:1000])  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        encoded = encode(tokenizer, docs)
        best = min(best, time.perf_counter() - start)
    tokens = int(encoded.lengths.sum())
    out: dict[str, Any] = {
        "docs": len(docs),
        "tokens": tokens,
        "vocab_size": tokenizer.get_vocab_size(),
        "encode_seconds": best,
        "encode_docs_per_s": len(docs) / best,
        "encode_tokens_per_s": tokens / best,
    }
    say(
        f"encode: {num(out['encode_docs_per_s'])} docs/s, {num(out['encode_tokens_per_s'])} tokens/s "
        f"({len(docs):,} R8 snippets of 10-20 words, best of 3; target >= {TARGETS['encode_docs_per_s']:,} docs/s)"
    )
    vocab = naive_vocabulary(train_texts, 50_000)
    start = time.perf_counter()
    for doc in docs:
        [vocab.get(token, 1) for token in basic_english(doc)]
    seconds = time.perf_counter() - start
    out["naive_docs_per_s"] = len(docs) / seconds
    out["encode_vs_naive"] = out["encode_docs_per_s"] / out["naive_docs_per_s"]
    say(
        f"naive basic_english + dict: {num(out['naive_docs_per_s'])} docs/s; "
        f"encode / naive: {out['encode_vs_naive']:.2f}x"
    )
    return out


def bench_prepare(plan: Plan, folder: Path) -> dict[str, Any]:
    """Section 5b: a cold prepare() (empty token cache) against the cached second one.

    The token cache lives under RNNCLF_CACHE, next to the corpora: a temporary RNNCLF_CACHE holding a link to
    the already-converted corpus makes the token cache empty without fetching the corpus again.
    """
    name = plan.prepare_corpus
    fetch(name)  # converted once in the normal cache
    cache = folder / "prepare-cache"
    cache.mkdir()
    (cache / name).symlink_to(cache_dir() / name, target_is_directory=True)
    config = reference_config(name)
    with token_cache(cache):
        start = time.perf_counter()
        cold = prepare(config)
        cold_seconds = time.perf_counter() - start
        start = time.perf_counter()
        warm = prepare(config)
        warm_seconds = time.perf_counter() - start
    if cold.cached or not warm.cached:
        raise RuntimeError(f"expected a cold then a cached prepare(), got cached={cold.cached}, {warm.cached}")
    docs = sum(len(encoded) for encoded in cold.encoded.values())
    tokens = sum(int(encoded.lengths.sum()) for encoded in cold.encoded.values())
    out = {
        "corpus": name,
        "docs": docs,
        "tokens": tokens,
        "cold_seconds": cold_seconds,
        "cached_seconds": warm_seconds,
        "cold_vs_cached": cold_seconds / warm_seconds,
    }
    say(
        f"prepare() on {name} ({docs:,} texts, {tokens:,} tokens): cold {cold_seconds:.2f}s "
        f"(read, split, fit tokenizer, encode, save), cached {warm_seconds:.3f}s: {out['cold_vs_cached']:.0f}x"
    )
    return out
