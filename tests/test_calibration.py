"""Calibrated probabilities: the temperature, ECE and Brier score, and the runs that fit and apply them."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import multi_label_task, order_task, write_csv, write_jsonl
from test_cli import assert_user_error, rnnclf

from rnnclf.data.corpus import label_targets
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate, fit_temperature, read_temperature, reliability
from rnnclf.evaluation.scores import probabilities
from rnnclf.evaluation.thresholds import choose_thresholds
from rnnclf.inference.evaluate import encoded_split, labelled_split
from rnnclf.inference.predictor import Predictor
from rnnclf.runs.directory import load_run

# the temperature


def overconfident(n: int = 3000, classes: int = 4, scale: float = 3.0, seed: int = 0):
    """Logits whose softmax is calibrated, multiplied by `scale`; the labels drawn from that softmax."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, size=(n, classes))
    p = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    targets = np.array([rng.choice(classes, p=row) for row in p])
    return (logits * scale).astype(np.float32), targets


def test_the_temperature_is_the_minimum_of_the_validation_loss():
    logits, targets = overconfident()
    temperature = fit_temperature(logits, targets).temperature
    grid = np.linspace(0.5, 8, 3001)
    nll = [torch.nn.functional.cross_entropy(torch.from_numpy(logits / t), torch.from_numpy(targets)) for t in grid]
    assert temperature.shape == (1,)
    assert abs(temperature[0] - grid[int(np.argmin(nll))]) < 0.01
    assert abs(temperature[0] - 3.0) < 0.25  # the scale put on calibrated logits, recovered


def multi_label_logits(n: int = 4000, seed: int = 1):
    """Three labels drawn from the sigmoid of `raw`, their logits `raw` scaled by 1, 4 and 2."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 2, size=(n, 3))
    targets = (rng.random((n, 3)) < 1 / (1 + np.exp(-raw))).astype(np.float32)
    return (raw * np.array([1.0, 4.0, 2.0])).astype(np.float32), targets


def test_each_label_gets_its_own_temperature_and_thin_labels_the_shared_one():
    logits, targets = multi_label_logits()
    targets[:, 2] = 0
    targets[:2, 2] = 1  # two positives: under the minimum support of 3
    fit = fit_temperature(logits, targets, min_support=3)
    assert abs(fit.temperature[0] - 1.0) < 0.15 and abs(fit.temperature[1] - 4.0) < 0.6
    assert fit.shared_labels == [2] and not fit.kept_at_one
    shared = fit_temperature(logits.reshape(-1, 1), targets.reshape(-1, 1), min_support=1).temperature
    assert fit.temperature[2] == pytest.approx(shared[0], rel=1e-6)  # fitted on all labels' pairs together


def test_a_separable_validation_split_keeps_the_temperature_at_one():
    # no error to learn from: the loss keeps falling as T falls, and the fit reaches its lower bound
    logits = np.array([[2.0, -2.0], [-3.0, 3.0]] * 20, dtype=np.float32)
    fit = fit_temperature(logits, np.array([0, 1] * 20))
    assert fit.kept_at_one and fit.temperature[0] == 1.0
    assert not fit_temperature(*overconfident()).kept_at_one


def test_a_separable_label_takes_the_shared_temperature():
    logits, targets = multi_label_logits(seed=2)
    targets[:, 1] = (logits[:, 1] > 0).astype(np.float32)  # label 1 is decided by its logit's sign: separable
    fit = fit_temperature(logits, targets)
    assert 1 in fit.shared_labels and 0 not in fit.shared_labels and not fit.kept_at_one
    shared = fit_temperature(logits.reshape(-1, 1), targets.reshape(-1, 1), min_support=1).temperature[0]
    assert fit.temperature[1] == pytest.approx(shared, rel=1e-6)
    all_separable = fit_temperature(logits, (logits > 0).astype(np.float32))
    assert all_separable.kept_at_one and np.all(all_separable.temperature == 1.0)


def test_the_temperature_never_changes_the_most_probable_class():
    logits, targets = overconfident(seed=2)
    temperature = fit_temperature(logits, targets).temperature
    assert np.array_equal(calibrate(logits, temperature).argmax(axis=1), logits.argmax(axis=1))


# ECE and Brier


def test_expected_calibration_error_by_hand():
    # confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.55 (right): two bins hold texts
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.55, 0.45]])
    targets = np.array([0, 1, 1, 0])
    figures = reliability(p, targets, bins=10)
    # bin (0.8, 0.9]: confidence 0.9, accuracy 0.5; bin (0.5, 0.6]: confidence 0.575, accuracy 1
    assert figures["ece"] == pytest.approx((2 * 0.4 + 2 * 0.425) / 4)
    brier = np.mean([0.01 + 0.01, 0.81 + 0.81, 0.16 + 0.16, 0.2025 + 0.2025])
    assert figures["brier"] == pytest.approx(brier)
    assert [b["count"] for b in figures["bins"]] == [0, 0, 0, 0, 0, 2, 0, 0, 2, 0]


def test_multi_label_calibration_is_over_every_text_and_label():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    p = rng.random((200, 4))
    targets = (rng.random((200, 4)) < p**2).astype(np.float32)
    figures = reliability(p, targets)
    assert figures["brier"] == pytest.approx(metrics.brier_score_loss(targets.ravel(), p.ravel()))
    bins = np.clip(np.ceil(p.ravel() * 15) - 1, 0, 14)
    expected = (
        sum(
            np.sum(bins == b) * abs(targets.ravel()[bins == b].mean() - p.ravel()[bins == b].mean())
            for b in range(15)
            if np.any(bins == b)
        )
        / p.size
    )
    assert figures["ece"] == pytest.approx(expected)


def test_calibrated_logits_have_a_lower_error_than_overconfident_ones():
    logits, targets = overconfident(seed=4)
    temperature = fit_temperature(logits[:1500], targets[:1500]).temperature  # fitted on one half, judged on the other
    held_out = logits[1500:], targets[1500:]
    before = reliability(probabilities(held_out[0], False), held_out[1])
    after = reliability(probabilities(calibrate(held_out[0], temperature), False), held_out[1])
    assert after["ece"] < before["ece"] / 2 and after["brier"] < before["brier"]


# runs

SINGLE = (
    "data: {train: train.csv, test: test.csv, valid_fraction: 0.2}\n"
    "embedding: {dim: 16}\n"
    "model: {encoder: gru, hidden_size: 24, head_dropout: 0.0}\n"
    "train: {epochs: 4, batch_size: 32, lr: 0.01, seed: 0, num_threads: 1}\n"
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("calibration")
    noisy = [
        (text, label if i % 5 else ("neg" if label == "pos" else "pos"))
        for i, (text, label) in enumerate(order_task(900, 5))
    ]
    write_csv(folder / "train.csv", noisy)  # a fifth of the labels flipped: confident models are wrong often
    write_csv(folder / "test.csv", order_task(300, 6))
    (folder / "single.yaml").write_text(SINGLE)
    for name, extra in (("run", []), ("raw", ["--set", "train.calibration=none"])):
        result = rnnclf("train", "--config", "single.yaml", "--run-dir", name, *extra, cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


def test_training_fits_a_temperature_on_valid_and_writes_it(ws):
    payload = json.loads((ws / "run" / "calibration.json").read_text())
    run = load_run(ws / "run")
    assert payload["fitted_on"] == "valid" and payload["texts"] == 180
    assert run.temperature.shape == (1,) and run.temperature[0] == pytest.approx(payload["temperature"])
    predictor = Predictor(run, "cpu")
    valid, _ = labelled_split(run, None, "valid")
    encoded, targets = encoded_split(predictor, valid)
    expected = fit_temperature(predictor.model_logits(encoded), targets).temperature
    assert payload["temperature"] == pytest.approx(float(expected[0]), rel=1e-4)  # the best weights' valid logits
    summary = json.loads((ws / "run" / "metrics.json").read_text())
    assert summary["valid"]["calibration"]["ece"] <= summary["valid"]["calibration"]["ece_before"]
    assert summary["valid"]["calibration"]["ece"] == pytest.approx(payload["valid"]["ece"])
    assert not (ws / "raw" / "calibration.json").exists() and load_run(ws / "raw").temperature is None


def test_predict_applies_the_temperature_and_keeps_every_label(ws):
    predictor = Predictor.load(ws / "run", "cpu")
    texts = [text for text, _ in order_task(50, 7)]
    from rnnclf.data.tokenizer import encode

    model_logits = predictor.model_logits(encode(predictor.tokenizer, texts))
    expected = torch.softmax(torch.from_numpy(model_logits) / float(predictor.temperature[0]), dim=1).numpy()
    assert np.allclose(predictor.predict_proba(texts), expected, atol=1e-6)
    assert not np.allclose(predictor.predict_proba(texts), probabilities(model_logits, False), atol=1e-3)
    assert [p[0][0] for p in predictor.predict(texts)] == [predictor.labels[i] for i in model_logits.argmax(axis=1)]


def test_eval_shows_calibration_before_and_after_and_draws_the_diagram(ws):
    result = rnnclf("eval", str(ws / "run"), "--format", "json", cwd=ws)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["calibration"]
    assert set(figures) >= {"ece", "ece_before", "brier", "brier_before", "temperature", "reliability"}
    assert sum(b["count"] for b in figures["reliability"]) == 300 and len(figures["reliability"]) == 15
    assert figures["ece"] != figures["ece_before"]
    table = rnnclf("eval", str(ws / "run"), "--format", "table", cwd=ws)
    assert "calibration: ECE" in table.stdout and "->" in table.stdout
    if importlib.util.find_spec("matplotlib"):
        assert (ws / "run" / "eval" / "test_calibration.png").stat().st_size > 0
    raw = rnnclf("eval", str(ws / "raw"), "--format", "table", cwd=ws)
    assert "(not calibrated)" in raw.stdout


def test_onnx_export_applies_the_temperature(ws):
    pytest.importorskip("onnxruntime")
    from rnnclf.inference.onnx import OnnxPredictor

    result = rnnclf("export", str(ws / "run"), cwd=ws)
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((ws / "run" / "model.onnx.json").read_text())
    assert sidecar["temperature"] == pytest.approx(float(load_run(ws / "run").temperature[0]))
    assert abs(sidecar["temperature"] - 1) > 0.05  # the comparison below can tell calibrated from raw
    texts = [text for text, _ in order_task(40, 8)]
    onnx = OnnxPredictor.load(ws / "run").predict_proba(texts)
    assert np.allclose(onnx, Predictor.load(ws / "run", "cpu").predict_proba(texts), atol=1e-4)


def test_a_damaged_calibration_file_is_one_line(ws, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(ws / "run", copy)
    (copy / "calibration.json").write_text('{"temperature": -1}')
    assert_user_error(rnnclf("predict", str(copy), "not good at all", cwd=ws), "calibration.json")
    (copy / "calibration.json").write_text('{"temperature": "hot"}')
    assert_user_error(rnnclf("eval", str(copy), cwd=ws), "calibration.json")


@pytest.mark.parametrize(
    ("value", "multi_label"),
    [("2", False), (True, False), (1e308, False), (1e-300, False), ({"a": "x", "b": 1}, True), ({"a": 1}, True)],
)
def test_a_temperature_that_is_not_a_number_in_bounds_is_refused(value, multi_label):
    with pytest.raises(RnnclfError, match="the run directory is damaged"):
        read_temperature({"temperature": value}, ["a", "b"], multi_label, "calibration.json")
    assert read_temperature({"temperature": {"a": 2, "b": 0.5}}, ["a", "b"], True, "x").tolist() == [2.0, 0.5]


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


def test_serve_answers_the_calibrated_probabilities(ws):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from test_serve import running_server

    from rnnclf.data.tokenizer import encode

    texts = [text for text, _ in order_task(5, 9)]
    predictor = Predictor.load(ws / "run", "cpu")
    raw = probabilities(predictor.model_logits(encode(predictor.tokenizer, texts)), False).max(axis=1)
    with running_server(ws / "run", ws / "serve.log") as (url, _):
        answered = httpx.post(f"{url}/predict", json={"texts": texts}, timeout=30).json()["predictions"]
        info = httpx.get(f"{url}/info", timeout=30).json()
    assert info["temperature"] == pytest.approx(float(predictor.temperature[0]))
    got = [prediction["probability"] for prediction in answered]
    assert got == pytest.approx([p[0][1] for p in predictor.predict(texts)], abs=1e-6)
    assert not np.allclose(got, raw, atol=1e-3)
