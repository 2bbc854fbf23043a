"""Multi-label data: label lists and separated labels, label sets, the carved validation split, unseen labels."""

from pathlib import Path

import pytest

from rnnclf.config.loading import load_config
from rnnclf.data.corpus import load_corpus
from rnnclf.data.readers import LabelFormat, read_split
from rnnclf.errors import RnnclfError

from helpers.data import multi_label_task, write_csv, write_jsonl
from helpers.runs import MULTI_LABEL_LABELS


def test_jsonl_lists_and_csv_separators_read_the_same_labels(tmp_path):
    rows = multi_label_task(200, seed=3)
    write_jsonl(tmp_path / "a.jsonl", rows)
    write_csv(tmp_path / "a.csv", [(text, ";".join(labels)) for text, labels in rows], header=("text", "labels"))
    from_jsonl = read_split(tmp_path / "a.jsonl", "text", "labels", label_format=LabelFormat(True))
    from_csv = read_split(tmp_path / "a.csv", "text", "labels", label_format=LabelFormat(True, ";"))
    expected = [tuple(labels) for _, labels in rows]
    assert from_jsonl.labels == expected and from_csv.labels == expected
    assert () in from_jsonl.labels  # a text with no label is kept, with an empty set of labels


def test_labels_are_sets_sorted_and_without_repeats(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "a b", "labels": ["z", "a", "z", 3]}\n')
    assert read_split(tmp_path / "a.jsonl", "text", "labels", label_format=LabelFormat(True)).labels == [
        ("3", "a", "z")
    ]


def test_carved_validation_keeps_rare_labels_on_both_sides(tmp_path):
    rows = multi_label_task(1500, seed=4)
    write_jsonl(tmp_path / "train.jsonl", rows)
    config = load_config(_config(tmp_path, "data: {train: train.jsonl, multi_label: true, label_field: labels}\n"))
    corpus = load_corpus(config.data, seed=0)
    rare = sum("rare" in labels for _, labels in rows)
    in_valid = sum("rare" in labels for labels in corpus.valid.labels)
    assert rare >= 10 and in_valid == round(0.1 * rare)  # iterative stratification: the share of each label
    assert corpus.multi_label and corpus.labels == MULTI_LABEL_LABELS
    again = load_corpus(config.data, seed=0)
    assert again.valid.labels == corpus.valid.labels  # deterministic for a seed


def test_a_test_label_never_seen_in_training_names_file_line_and_label(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", multi_label_task(100, seed=5))
    write_jsonl(tmp_path / "test.jsonl", [("a goal", ["sport"]), ("a comet", ["rare", "space"])])
    config = load_config(
        _config(tmp_path, "data: {train: train.jsonl, test: test.jsonl, multi_label: true, label_field: labels}\n")
    )
    with pytest.raises(RnnclfError, match=r"test.jsonl: line 2: label 'space' in 'labels' was never seen"):
        load_corpus(config.data, seed=0)


def _config(folder: Path, text: str) -> Path:
    path = folder / "c.yaml"
    path.write_text(text)
    return path
