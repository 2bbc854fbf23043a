"""Comparing runs (rnnclf report): the config keys that differ between the runs, and their scores."""

import json

from rnnclf.runs.compare import compare_runs


def test_report_columns_are_the_keys_that_differ(plot_runs):
    rows = compare_runs([plot_runs["a"], plot_runs["b"]])
    assert [row["model.hidden_size"] for row in rows] == [24, 32]
    assert [row["train.epochs"] for row in rows] == [3, 2]
    assert [row["output.tensorboard"] for row in rows] == [True, False]
    assert "model.encoder" not in rows[0] and "output.run_dir" not in rows[0]
    summary = json.loads((plot_runs["a"] / "metrics.json").read_text())
    assert rows[0]["best_epoch"] == summary["best_epoch"]
    assert rows[0]["valid_accuracy"] == summary["valid"]["accuracy"]
    assert rows[0]["test_macro_f1"] == summary["test"]["macro_f1"]
    assert rows[1]["parameters"] > rows[0]["parameters"]
    single = compare_runs([plot_runs["a"]])
    assert single[0]["model.encoder"] == "gru" and single[0]["model.hidden_size"] == 24
