"""The label depends on word order: each recurrent encoder learns it, a bag of embeddings cannot."""

import pytest

from rnnclf.config.loading import load_config
from rnnclf.recipes.classify import train


def run(tmp_path, files, encoder, pooling="max", bidirectional=True):
    config_path = tmp_path / "order.yaml"
    config_path.write_text(
        f"data: {{train: {files['train']}, test: {files['test']}, valid_fraction: 0.15}}\n"
        "embedding: {dim: 16}\n"
        f"model: {{encoder: {encoder}, hidden_size: 32, pooling: {pooling}, bidirectional: {str(bidirectional).lower()}, head_dropout: 0.0}}\n"
        "train: {epochs: 10, batch_size: 32, lr: 0.01, seed: 0, early_stopping: 3}\n"
        f"output: {{run_dir: {tmp_path / ('run-' + encoder + '-' + pooling)}}}\n"
    )
    return train(load_config(config_path), log=lambda message: None)


@pytest.mark.parametrize(
    ("encoder", "pooling", "bidirectional"),
    [
        ("rnn", "max", True),
        ("lstm", "last", False),
        ("lstm", "max", True),
        ("gru", "mean", True),
        ("gru", "last", True),
    ],
)
def test_recurrent_encoders_learn_word_order(tmp_path, order_files, encoder, pooling, bidirectional):
    summary = run(tmp_path, order_files, encoder, pooling, bidirectional)
    assert summary["test"]["accuracy"] >= 0.95


def test_bag_of_embeddings_cannot(tmp_path, order_files):
    summary = run(tmp_path, order_files, "bag", "mean")
    assert summary["test"]["accuracy"] <= 0.65
