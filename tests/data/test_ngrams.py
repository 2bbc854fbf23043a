"""The wide head's n-gram features are scikit-learn's TfidfVectorizer (word 1-2-grams, min_df, sublinear tf, smooth
idf, unit rows), computed by hashing words in numpy: checked against scikit-learn on the same texts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rnnclf.data.ngrams import NgramFeatures, fit_ngrams, ngram_keys
from rnnclf.data.sparse_rows import SparseRows
from rnnclf.data.words import normalised_word_hashes

WORDS = "the cat sat on a mat dog ran far and then slept under old red tree by river bank in spring".split()


def texts(count: int, seed: int) -> list[str]:
    """Sentences with capitals, punctuation and repeated words; a few empty of words."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(0, 14))]
        words = [word.upper() if rng.random() < 0.1 else word for word in words]
        out.append(" ".join(word + rng.choice(["", "", ",", ".", "!", " -", "'s"]) for word in words) or "?!")
    return out


def key_of(ngram: str) -> int:
    """Our key of one n-gram written out as words."""
    hashes, counts = normalised_word_hashes([ngram])
    docs, keys = ngram_keys(hashes, counts, len(ngram.split()))
    return int(keys[-1])


def as_dicts(rows: SparseRows, names: dict[int, str]) -> list[dict[str, float]]:
    return [
        {names[int(f)]: float(v) for f, v in zip(rows.indices[a:b], rows.values[a:b], strict=True)}
        for a, b in zip(rows.offsets[:-1], rows.offsets[1:], strict=True)
    ]


@pytest.mark.parametrize(("ngrams", "min_df", "sublinear"), [(2, 2, True), (1, 1, False), (3, 3, True)])
def test_the_same_features_and_values_as_scikit_learn(ngrams, min_df, sublinear):
    sklearn = pytest.importorskip("sklearn.feature_extraction.text")
    train, test = texts(300, seed=1), texts(80, seed=2)
    ours = fit_ngrams(train, ngrams=ngrams, min_df=min_df, sublinear_tf=sublinear)
    theirs = sklearn.TfidfVectorizer(
        ngram_range=(1, ngrams), min_df=min_df, sublinear_tf=sublinear, token_pattern=r"(?u)[^\W_]+"
    ).fit(train)
    vocabulary = theirs.get_feature_names_out()
    assert ours.size == len(vocabulary)
    position = {int(key): i for i, key in enumerate(ours.keys)}
    names = {position[key_of(name)]: name for name in vocabulary}  # every n-gram of theirs is one of ours
    assert len(names) == ours.size
    for split in (train, test):
        expected = theirs.transform(split)
        want = [dict(zip(vocabulary[row.indices], row.data, strict=True)) for row in expected]
        got = as_dicts(ours.transform(split), names)
        assert [set(g) for g in got] == [set(w) for w in want]
        for g, w in zip(got, want, strict=True):
            assert all(g[name] == pytest.approx(w[name], rel=1e-5) for name in w)


def test_max_features_keeps_the_most_frequent():
    train = texts(300, seed=3)
    every = fit_ngrams(train, min_df=1)
    kept = fit_ngrams(train, min_df=1, max_features=40)
    assert kept.size == 40 and set(kept.keys.tolist()) <= set(every.keys.tolist())
    docs, keys = ngram_keys(*normalised_word_hashes(train), 2)
    frequency = dict(zip(*np.unique(keys, return_counts=True), strict=True))
    dropped = set(every.keys.tolist()) - set(kept.keys.tolist())
    assert min(frequency[k] for k in kept.keys.tolist()) >= max(frequency[k] for k in dropped)


def test_unknown_words_and_empty_texts_give_empty_rows():
    features = fit_ngrams(texts(100, seed=4))
    rows = features.transform(["zebra quokka", "", "the cat", "!!!"])
    counts = np.diff(rows.offsets)
    assert counts[0] == 0 and counts[1] == 0 and counts[2] >= 2 and counts[3] == 0  # the, cat (and maybe both)
    assert np.linalg.norm(rows.values[rows.offsets[2] : rows.offsets[3]]) == pytest.approx(1.0)


def test_case_punctuation_and_line_breaks_separate_the_same_words():
    features = fit_ngrams(texts(200, seed=5), min_df=1)
    a, b = features.transform(["The cat, sat.", "the\ncat sat"]), features.transform(["the cat sat"] * 2)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.values, b.values)


def test_saved_and_loaded_features_transform_alike(tmp_path):
    features = fit_ngrams(texts(200, seed=6), ngrams=3, min_df=2, sublinear_tf=False, lowercase=False)
    features.save(tmp_path)
    loaded = NgramFeatures.load(tmp_path)
    assert (loaded.ngrams, loaded.sublinear_tf, loaded.lowercase) == (3, False, False)
    sample = texts(50, seed=7)
    a, b = features.transform(sample), loaded.transform(sample)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.values, b.values)


def test_rows_taken_in_any_order_are_the_same_rows():
    rows = fit_ngrams(texts(120, seed=8)).transform(texts(30, seed=9))
    index = np.array([5, 0, 29, 5, 12])
    taken = rows.take(index)
    for place, i in enumerate(index):
        a, b = taken.offsets[place], taken.offsets[place + 1]
        c, d = rows.offsets[i], rows.offsets[i + 1]
        np.testing.assert_array_equal(taken.indices[a:b], rows.indices[c:d])
        np.testing.assert_array_equal(taken.values[a:b], rows.values[c:d])


def test_unknown_word_shares_come_with_the_rows():
    features = fit_ngrams(["oil prices rose", "oil prices fell", "wheat prices rose"], min_df=2)  # oil, prices, rose
    texts = ["oil prices rose", "zxqv oil blorp wibble", "!!!", "Wheat WHEAT prices"]
    rows, unknown = features.transform_with_unknown(texts)
    assert unknown.tolist() == pytest.approx([0.0, 0.75, 1.0, 2 / 3])  # wheat is once in training: not kept
    plain = features.transform(texts)
    assert np.array_equal(rows.offsets, plain.offsets) and np.allclose(rows.values, plain.values)
