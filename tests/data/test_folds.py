"""Cross-validation's folds (data.folds, data.fold): stratified, seeded, each text held out exactly once, and a fold
run's test split is its fold and nothing else."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnnclf.config.loading import load_config
from rnnclf.data.corpus import fold_ids, load_corpus, read_named_split
from rnnclf.data.readers import Split
from rnnclf.errors import RnnclfError

from helpers.data import multi_label_task, order_task, write_csv


def test_single_label_folds_are_stratified_and_seeded():
    labels = ["a"] * 53 + ["b"] * 31 + ["c"] * 7
    split = Split([str(i) for i in range(len(labels))], labels, "x")
    ids = fold_ids(split, 5, seed=3)
    assert sorted(set(ids)) == [0, 1, 2, 3, 4]
    sizes = np.bincount(ids)
    assert sizes.max() - sizes.min() <= 1  # the folds are as even as the count allows
    for label in "abc":
        per_fold = np.bincount(ids[np.array(labels) == label], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1, (label, per_fold)
    assert np.array_equal(ids, fold_ids(split, 5, seed=3))
    assert not np.array_equal(ids, fold_ids(split, 5, seed=4))


def test_multi_label_folds_spread_every_label():
    rows = multi_label_task(600, seed=5)
    split = Split([text for text, _ in rows], [tuple(labels) for _, labels in rows], "x")
    ids = fold_ids(split, 4, seed=0, multi_label=True)
    assert np.bincount(ids, minlength=4).min() >= 140
    counts = Counter(label for _, labels in rows for label in labels)
    for label, count in counts.items():
        per_fold = np.bincount([ids[i] for i, (_, labels) in enumerate(rows) if label in labels], minlength=4)
        assert per_fold.max() - per_fold.min() <= max(2, count // 10), (label, per_fold)


def fold_config(tmp_path: Path, folds: int, fold: int, seed: int = 0) -> object:
    train = write_csv(tmp_path / "train.csv", order_task(200, seed=1))
    test = write_csv(tmp_path / "test.csv", order_task(50, seed=2))
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{train: {train}, test: {test}}}\n")
    sets = [f"data.folds={folds}", f"data.fold={fold}", f"data.fold_seed={seed}"]
    return load_config(path, sets + [f"output.run_dir={tmp_path / 'run'}"])


def test_each_text_is_held_out_once_and_never_trained_on(tmp_path):
    held, lines = [], []
    for fold in range(4):
        config = fold_config(tmp_path, 4, fold)
        corpus = load_corpus(config.data, seed=0)
        test_rows, train_rows, valid_rows = set(corpus.test.rows), set(corpus.train.rows), set(corpus.valid.rows)
        assert not test_rows & (train_rows | valid_rows)  # the fold is neither trained on nor validated on
        assert len(test_rows | train_rows | valid_rows) == 200  # the test file is not read
        assert "fold" in corpus.test.source
        held += list(corpus.test.rows)
        lines = sorted(read_named_split(config.data, "train").rows)
    assert sorted(held) == lines


def test_fold_keys_are_checked(tmp_path):
    fold_config(tmp_path, 3, 0)  # writes c.yaml; a fold of three is fine
    with pytest.raises(Exception, match="data.folds and data.fold go together"):
        load_config(tmp_path / "c.yaml", ["data.fold=1"])
    with pytest.raises(Exception, match="numbered 0 to 2"):
        load_config(tmp_path / "c.yaml", ["data.folds=3", "data.fold=3"])


def test_more_folds_than_a_class_has_texts_is_one_line(tmp_path):
    rows = [("good film", "pos")] * 30 + [("bad film", "neg")] * 30 + [("odd film", "odd")] * 2
    train = write_csv(tmp_path / "small.csv", rows)
    path = tmp_path / "small.yaml"
    path.write_text(f"data: {{train: {train}, folds: 3, fold: 0}}\n")
    with pytest.raises(RnnclfError, match="class 'odd' has 2 texts.*use at most 2 folds"):
        load_corpus(load_config(path, []).data, seed=0)
