"""The wide head's part of an explanation: each n-gram of a text with its contribution to the explained label's
log-odds. The wide head is linear in the n-grams, so an n-gram's contribution is its value times its weights, taken
through the log-odds' gradient: scale * value * (W[label] - sum over the other labels k of p_k W[k]), p the softmax
of the other labels' logits (for a multi-label run, the label's own logit: scale * value * W[label], exact). The
contributions add up to the wide head's first-order share of the log-odds.

The words are found again in Python (the same normalisation as rnnclf.data.words), so that each n-gram can be shown
as text; the numpy path gives the keys in the same order (every 1-gram, then every 2-gram, ...)."""

from __future__ import annotations

import unicodedata

import numpy as np
import torch

from rnnclf.data.ngrams import NgramFeatures, ngram_keys
from rnnclf.data.words import SEPARATORS, normalised_word_hashes
from rnnclf.models.wide import WideHead

SHOWN = 8  # the n-grams shown per explained label, the largest contributions first


def text_ngrams(features: NgramFeatures, text: str) -> tuple[list[str], list[str], np.ndarray]:
    """The text's words, its n-grams as text (in the order of ngram_keys) and each one's feature (-1: not kept)."""
    normal = unicodedata.normalize("NFKC", text.replace("\n", " "))
    words = SEPARATORS.sub(" ", normal.lower() if features.lowercase else normal).split()
    names = [" ".join(words[i : i + n]) for n in range(1, features.ngrams + 1) for i in range(len(words) - n + 1)]
    docs, keys = ngram_keys(*normalised_word_hashes([text], features.lowercase), features.ngrams)
    if features.table is None:
        features.transform([""])  # builds the key table
    return words, names, features.table.find(keys)


def direction(logits: torch.Tensor, label: int, multi_label: bool) -> torch.Tensor:
    """The gradient of the label's log-odds with respect to the logits (classes,)."""
    if multi_label:
        return torch.nn.functional.one_hot(torch.tensor(label), logits.shape[-1]).float()
    others = logits.clone().float()
    others[label] = float("-inf")
    gradient = -torch.softmax(others, dim=0)
    gradient[label] = 1.0
    return gradient


def ngram_contributions(
    features: NgramFeatures, wide: WideHead, text: str, logits: torch.Tensor, label: int, multi_label: bool
) -> tuple[list[tuple[str, float]], float, list[str], np.ndarray]:
    """(the n-grams with the largest |contribution|, their sum over all n-grams, the text's words, each word's share
    of the n-grams through it) for one label."""
    words, names, found = text_ngrams(features, text)
    rows = features.transform([text])
    value = dict(zip(rows.indices.tolist(), rows.values.tolist(), strict=True))
    weights = wide.weight.detach().float().cpu() @ direction(logits.cpu(), label, multi_label)
    scale = float(wide.scale)
    by_feature = {f: scale * value[f] * float(weights[f]) for f in set(found.tolist()) if f >= 0}
    shown = {}  # each feature once, named by its first n-gram
    for name, feature in zip(names, found.tolist(), strict=True):
        if feature >= 0 and feature not in shown:
            shown[feature] = name
    ranked = sorted(by_feature, key=lambda f: -abs(by_feature[f]))[:SHOWN]
    return (
        [(shown[f], by_feature[f]) for f in ranked],
        float(sum(by_feature.values())),
        words,
        word_shares(words, names, found, by_feature, features.ngrams),
    )


def word_shares(
    words: list[str], names: list[str], found: np.ndarray, by_feature: dict[int, float], ngrams: int
) -> np.ndarray:
    """Each word's score: every kept n-gram's contribution spread evenly over its words (an n-gram met twice in the
    text counts once, as its tf-idf value does: its share goes to its first place)."""
    shares = np.zeros(len(words))
    position, seen = 0, set()
    for n in range(1, ngrams + 1):
        for start in range(len(words) - n + 1):
            feature = int(found[position])
            position += 1
            if feature < 0 or feature in seen:
                continue
            seen.add(feature)
            shares[start : start + n] += by_feature[feature] / n
    assert len(names) == position
    return shares
