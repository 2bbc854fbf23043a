"""rnnclf data check: lengths in tokens, truncation, padding of the batches, vocabulary and pretrained coverage.

Uses the tokenizer a run would use (model.init's, or one fitted on the training split as `train` fits it), the
project's encode() and its batching. Lengths and out-of-vocabulary rates are measured on a seeded random sample of
each split (all of it when small), plus its longest texts by characters, so that the maximum is the true one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from rnnclf.check.findings import EXAMPLES, CheckSplit, finding, split_example
from rnnclf.config.loading import tokenizer_settings
from rnnclf.config.schema import Config
from rnnclf.data.tokenizer import UNK_ID, encode, fit_tokenizer, load_tokenizer, vocabulary
from rnnclf.errors import RnnclfError
from rnnclf.files import TOKENIZER

SAMPLE = 50_000  # texts per split whose tokens are counted: percentiles within a fraction of a token
LONGEST = 100  # and the longest texts by characters, for the maximum
PERCENTILES = (50, 90, 95, 99)


def run_tokenizer(config: Config, train: CheckSplit) -> tuple[Tokenizer, str]:
    """model.init's tokenizer when there is one, else one fitted on the training texts; without truncation."""
    init = config.model.init
    if init is not None and (Path(init) / TOKENIZER).exists():
        tokenizer, source = load_tokenizer(Path(init) / TOKENIZER), f"model.init's ({init})"
    else:
        texts = [text for text in train.texts if text.strip()]
        tokenizer = fit_tokenizer(texts, None, **tokenizer_settings(config))
        source = "fitted on the training split, as train fits it"
    tokenizer.no_truncation()
    return tokenizer, source


def measured(texts: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(sample, longest): indices of non-empty texts, a seeded random sample and the longest by characters."""
    index = np.flatnonzero(np.fromiter((bool(text.strip()) for text in texts), dtype=bool, count=len(texts)))
    sample = index
    if len(index) > SAMPLE:
        sample = np.sort(np.random.default_rng(seed).choice(index, SAMPLE, replace=False))
    sizes = np.fromiter((len(texts[i]) for i in index), dtype=np.int64, count=len(index))
    longest = index[np.argsort(sizes)[-LONGEST:]] if len(index) > SAMPLE else index[:0]
    return sample, longest


def padding_share(lengths: np.ndarray, batch_size: int, seed: int, training: bool) -> float:
    """The share of padding in the batches: training's bucketed batches (epoch 0), or evaluation's sorted ones."""
    from rnnclf.data.batching import bucket_by_length, sequential_batches

    batches = bucket_by_length(lengths, batch_size, seed, 0) if training else sequential_batches(lengths, batch_size)
    padded = sum(int(lengths[batch].max()) * len(batch) for batch in batches if len(batch))
    return 1 - float(lengths.sum()) / padded if padded else 0.0


def split_tokens(
    split: CheckSplit, tokenizer: Tokenizer, config: Config, training: bool
) -> tuple[dict, np.ndarray, list[dict]]:
    """Length percentiles, the share cut by data.max_length, padding and <unk> share of one split; the ids; and the
    longest measured rows, with their token counts, as examples."""
    sample, longest = measured(split.texts, config.train.seed)
    rows = np.concatenate([sample, longest])
    encoded = encode(tokenizer, [split.texts[i] for i in rows])
    lengths = encoded.lengths[: len(sample)]
    cap = config.data.max_length
    clipped = np.minimum(lengths, cap) if cap else lengths
    stats = {
        "texts": int(sum(1 for text in split.texts if text.strip())),
        "measured": len(sample),
        **{f"p{q}": int(np.percentile(lengths, q, method="nearest")) if len(lengths) else 0 for q in PERCENTILES},
        "max": int(encoded.lengths.max()) if len(encoded) else 0,
        "cut_share": float((lengths > cap).mean()) if cap and len(lengths) else 0.0,
        **windowed_share(clipped, config.model.chunk),
        "padding_share": padding_share(clipped, config.train.batch_size, config.train.seed, training),
        "unk_share": float((encoded.ids[: encoded.offsets[len(sample)]] == UNK_ID).mean()) if len(sample) else 0.0,
    }
    return stats, encoded.ids[: encoded.offsets[len(sample)]], longest_examples(split, rows, encoded.lengths)


def truncation_hint(config: Config) -> str:
    """What the truncation finding adds: how the model reads what is left, or how to read long texts whole."""
    if config.model.chunk is not None:
        return f" (the rest is read in windows of model.chunk {config.model.chunk} tokens)"
    return "; model.chunk reads long texts in windows (with data.max_length null: whole)"


def windowed_share(lengths: np.ndarray, window: int | None) -> dict:
    """With model.chunk: the share of texts read in more than one window, and the most windows of one text."""
    if window is None or not len(lengths):
        return {}
    windows = -(-lengths // window)
    return {"multi_window_share": float((windows > 1).mean()), "most_windows": int(windows.max())}


def longest_examples(split: CheckSplit, rows: np.ndarray, lengths: np.ndarray) -> list[dict]:
    """The rows with the most tokens, longest first, each with its token count."""
    top = np.argsort(-lengths, kind="stable")[:EXAMPLES]
    return [split_example(split, int(rows[i]), tokens=int(lengths[i])) for i in top]


def token_report(
    splits: list[CheckSplit], config: Config, tokenizer: Tokenizer, source: str
) -> tuple[dict, list[dict]]:
    """The tokens section of the report, and its findings (texts cut by max_length); `tokenizer` is run_tokenizer's."""
    lengths, findings, train_ids = {}, [], None
    for number, split in enumerate(splits):
        lengths[split.name], ids, longest = split_tokens(split, tokenizer, config, training=number == 0)
        train_ids = ids if number == 0 else train_ids
        cut = lengths[split.name]["cut_share"]
        if cut:
            message = (
                f"{split.name}: {cut:.1%} of texts are longer than data.max_length {config.data.max_length} and are cut"
                + truncation_hint(config)
            )
            findings.append(finding("truncated", message, round(cut * lengths[split.name]["texts"]), longest))
    vocab = vocabulary(tokenizer)
    report = {
        "tokenizer": {"kind": config.tokenizer.kind, "source": source, "vocabulary": len(vocab)},
        "max_length": config.data.max_length,
        "batch_size": config.train.batch_size,
        "lengths": lengths,
        "oov": {name: stats["unk_share"] for name, stats in lengths.items()},
    }
    if config.embedding.pretrained:
        report["pretrained"] = pretrained_coverage(config, vocab, train_ids)
    return report, findings


def pretrained_coverage(config: Config, vocab: list[str], train_ids: np.ndarray) -> dict:
    """Coverage of the vocabulary and of the training tokens by embedding.pretrained; a note if it cannot be read."""
    from rnnclf.models.embeddings import load_pretrained

    counts = np.bincount(train_ids, minlength=len(vocab))
    source = config.embedding.pretrained
    try:
        vectors = load_pretrained(source, vocab, config.embedding.dim, counts, config.train.seed)
    except RnnclfError as exc:
        return {"source": source, "note": f"coverage not checked: {exc}"}
    return {"source": source, **vectors.coverage()}
