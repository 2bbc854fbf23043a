"""`rnnclf train` end to end, in a subprocess as a user runs it: the run directory it writes (single- and
multi-label, calibrated), a run never overwritten, one-line mistakes, warnings for keys that do nothing."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from rnnclf.data.corpus import label_targets
from rnnclf.evaluation.calibration import fit_temperature
from rnnclf.evaluation.scores import probabilities
from rnnclf.evaluation.thresholds import choose_thresholds
from rnnclf.inference.evaluate import encoded_split, labelled_split
from rnnclf.inference.predictor import Predictor
from rnnclf.runs.directory import load_run

from helpers.cli import assert_user_error, rnnclf
from helpers.data import digest, multi_label_task, write_csv, write_jsonl
from helpers.runs import MULTI_LABEL_LABELS


def test_train_writes_a_self_contained_run(order_run):
    names = {p.name for p in order_run.iterdir()}
    assert {
        "config.yaml",
        "labels.json",
        "tokenizer.json",
        "model.safetensors",
        "state",
        "metrics.jsonl",
        "metrics.json",
        "env.json",
    } <= names
    assert json.loads((order_run / "labels.json").read_text()) == ["neg", "pos"]
    epochs = [json.loads(line) for line in (order_run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
    summary = json.loads((order_run / "metrics.json").read_text())
    assert summary["test"]["accuracy"] >= 0.9
    assert "seed: 1" in (order_run / "config.yaml").read_text()
    assert json.loads((order_run / "env.json").read_text())["device"] == "cpu"


def test_existing_run_directory_is_never_overwritten(order_run, order_workspace):
    before = digest(order_run)
    result = rnnclf("train", "--config", "config.yaml", cwd=order_workspace)
    assert_user_error(result, "already exists", str(Path("runs") / "config"))
    assert digest(order_run) == before


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        (
            "data: {train: train.csv}\nmodel: {encodr: gru}\n",
            ["bad.yaml", "unknown key 'model.encodr'", "did you mean 'model.encoder'"],
        ),
        ("data: {train: missing.csv}\n", ["missing.csv: file not found"]),
        ("data: {train: train.csv, text_field: body}\n", ["train.csv: no column 'body'"]),
        ("data: {train: one_class.csv}\n", ["one_class.csv: only one class"]),
        ("data: {train: train.csv, test: unseen.csv}\n", ["unseen.csv: line 2: label 'maybe'"]),
        ("data: {train: empty_text.csv}\n", ["empty_text.csv: line 3: empty text"]),
        ("data: {train: train.csv}\ntrain: {device: cuda}\n", ["train.device is 'cuda' but torch sees no CUDA device"]),
        ("data: {train: train.csv\n", ["bad.yaml", "invalid YAML"]),
    ],
)
def test_train_mistakes_are_one_line_exit_2(order_workspace, config, fragments):
    write_csv(order_workspace / "one_class.csv", [("a b", "pos"), ("c d", "pos")])
    write_csv(order_workspace / "unseen.csv", [("a b", "maybe")])
    write_csv(order_workspace / "empty_text.csv", [("a b", "pos"), ("   ", "neg")])
    (order_workspace / "bad.yaml").write_text(config + "output: {run_dir: runs/never}\n")
    result = rnnclf("train", "--config", "bad.yaml", cwd=order_workspace)
    assert_user_error(result, *fragments)
    assert not (order_workspace / "runs" / "never").exists()


def test_a_key_that_does_nothing_is_one_warning_line(order_workspace):
    result = rnnclf(
        "train", "--config", "config.yaml", "--run-dir", "runs/warned", "--set", "train.epochs=1",
        "--set", "train.momentum=0.5", cwd=order_workspace,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "rnnclf: warning: config.yaml: train.momentum: 0.5 does nothing here (train.optimizer is not sgd)"
    ]


def test_training_writes_thresholds_and_multi_label_metrics(multi_label_workspace):
    run = multi_label_workspace / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["multi_label"] and metrics["metric"] == "micro_f1"
    for split in ("valid", "test"):
        assert {"micro_f1", "macro_f1", "samples_f1", "hamming_loss", "at_0.5"} <= set(metrics[split])
    assert metrics["test"]["micro_f1"] > 0.9  # keyword topics: easy for a GRU
    saved = json.loads((run / "thresholds.json").read_text())
    assert sorted(saved["thresholds"]) == MULTI_LABEL_LABELS
    assert saved["method"] == "per_label_f1" and "rare" in saved["fallback"]  # too few in validation to tune
    assert all(saved["floor"] <= value <= 1 for value in saved["thresholds"].values())
    assert metrics["test"]["per_class"]["sport"]["threshold"] == saved["thresholds"]["sport"]
    by_rule = metrics["test"]["by_rule"]
    assert by_rule["per_label"]["micro_f1"] == metrics["test"]["micro_f1"]  # the rule this run used
    assert by_rule["fixed"] == metrics["test"]["at_0.5"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("valid_micro_f1" in line and "valid_samples_f1" in line for line in lines)
    config = (run / "config.yaml").read_text()
    assert "metric: micro_f1" in config and "multi_label: true" in config


def test_training_fits_a_temperature_on_valid_and_writes_it(calibration_workspace):
    payload = json.loads((calibration_workspace / "run" / "calibration.json").read_text())
    run = load_run(calibration_workspace / "run")
    assert payload["fitted_on"] == "valid" and payload["texts"] == 180
    assert run.temperature.shape == (1,) and run.temperature[0] == pytest.approx(payload["temperature"])
    predictor = Predictor(run, "cpu")
    valid, _ = labelled_split(run, None, "valid")
    encoded, targets = encoded_split(predictor, valid)
    expected = fit_temperature(predictor.model_logits(encoded), targets).temperature
    assert payload["temperature"] == pytest.approx(float(expected[0]), rel=1e-4)  # the best weights' valid logits
    summary = json.loads((calibration_workspace / "run" / "metrics.json").read_text())
    assert summary["valid"]["calibration"]["ece"] <= summary["valid"]["calibration"]["ece_before"]
    assert summary["valid"]["calibration"]["ece"] == pytest.approx(payload["valid"]["ece"])
    assert (
        not (calibration_workspace / "raw" / "calibration.json").exists()
        and load_run(calibration_workspace / "raw").temperature is None
    )


def test_multi_label_thresholds_are_chosen_on_calibrated_probabilities(tmp_path):
    rng = np.random.default_rng(11)
    rows = [(text, [label for label in labels if rng.random() > 0.15]) for text, labels in multi_label_task(1200, 11)]
    write_jsonl(tmp_path / "train.jsonl", rows)  # labels dropped at random: not separable, so confidence is learnt
    (tmp_path / "ml.yaml").write_text(
        "data: {train: train.jsonl, multi_label: true, label_field: labels, max_length: 40}\n"
        "embedding: {dim: 16}\nmodel: {encoder: gru, hidden_size: 24}\n"
        "train: {epochs: 3, batch_size: 32, lr: 0.01, num_threads: 1, thresholds: per_label}\n"
    )
    result = rnnclf("train", "--config", "ml.yaml", "--run-dir", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = load_run(tmp_path / "run")
    payload = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert set(payload["temperature"]) == set(run.labels)  # one per label
    assert payload["shared_temperature_labels"] == ["rare"]  # about 2% of the texts: too few validation positives
    assert "kept_at_1" not in payload
    predictor = Predictor(run, "cpu")
    valid, _ = labelled_split(run, None, "valid")
    encoded, targets = encoded_split(predictor, valid)
    calibrated = probabilities(predictor.encoded_logits(encoded), True)
    expected, _ = choose_thresholds(calibrated, targets, run.labels, "per_label", 3, 0.05)
    assert np.allclose(run.thresholds, expected, atol=1e-6)
    uncalibrated, _ = choose_thresholds(
        probabilities(predictor.model_logits(encoded), True), targets, run.labels, "per_label", 3, 0.05
    )
    assert not np.allclose(uncalibrated, expected, atol=1e-3)  # the test can tell the two apart
    assert np.array_equal(label_targets(valid.labels, run.labels, True), targets)
    if importlib.util.find_spec("onnxruntime"):  # the ONNX graph divides each label's logit by its own temperature
        from rnnclf.inference.onnx import OnnxPredictor

        assert rnnclf("export", "run", cwd=tmp_path).returncode == 0
        texts = [text for text, _ in multi_label_task(30, seed=12)]
        onnx = OnnxPredictor.load(tmp_path / "run").predict_proba(texts)
        assert np.allclose(onnx, predictor.predict_proba(texts), atol=1e-4)
        assert len(set(np.round(run.temperature, 3))) > 1
