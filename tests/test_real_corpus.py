"""One real corpus: fetch Reuters R8 (cached after the first run), train a small model for one epoch."""

import json

from rnnclf.config import load_config
from rnnclf.engine.trainer import train


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
