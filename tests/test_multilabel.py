"""Multi-label classification end to end: data, loss, thresholds, train, eval, predict, serve, ONNX, report."""

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TOPICS, multi_label_task, write_csv, write_jsonl
from test_cli import assert_user_error, rnnclf

from rnnclf.config.loading import load_config
from rnnclf.data.corpus import load_corpus
from rnnclf.data.readers import LabelFormat, read_split
from rnnclf.errors import RnnclfError
from rnnclf.inference.predictor import Predictor
from rnnclf.recipes.classify import train
from rnnclf.training.losses import class_weight_tensor, loss_function, objective

LABELS = sorted(TOPICS)
CONFIG = (
    "data: {train: train.jsonl, test: test.jsonl, multi_label: true, label_field: labels, max_length: 40}\n"
    "embedding: {dim: 32}\n"
    "model: {encoder: gru, hidden_size: 32}\n"
    "train: {epochs: 5, batch_size: 32, lr: 0.005, num_threads: 1, thresholds: per_label}\n"
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("multilabel")
    write_jsonl(folder / "train.jsonl", multi_label_task(1500, seed=1))
    write_jsonl(folder / "test.jsonl", multi_label_task(400, seed=2))
    (folder / "ml.yaml").write_text(CONFIG)
    result = rnnclf("train", "--config", "ml.yaml", "--run-dir", "run", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def quiet(message: str) -> None:
    pass


# data


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
    assert corpus.multi_label and corpus.labels == LABELS
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


# loss


def test_the_loss_is_binary_cross_entropy_with_pos_weight_and_smoothed_targets():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 0.3, -2.0]])
    targets = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.uint8)
    weight = torch.tensor([1.0, 3.0, 0.5])
    smoothed = torch.from_numpy(targets).float() * 0.8 + 0.1
    by_hand = -(
        weight * smoothed * torch.nn.functional.logsigmoid(logits)
        + (1 - smoothed) * torch.nn.functional.logsigmoid(-logits)
    ).mean()
    assert objective(logits.numpy(), targets, weight, 0.2) == pytest.approx(by_hand.item(), rel=1e-6)
    loss = loss_function(True, weight, 0.2)(logits, torch.from_numpy(targets).float())
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_balanced_class_weights_are_positive_weights_per_label():
    targets = np.zeros((1000, 3), dtype=np.uint8)
    targets[:500, 0] = 1  # 1:1
    targets[:100, 1] = 1  # 9:1
    targets[:2, 2] = 1  # 499:1, capped
    weights = class_weight_tensor("balanced", ["a", "b", "c"], targets)
    assert weights.tolist() == pytest.approx([1.0, 9.0, 100.0])
    given = class_weight_tensor({"b": 4.0}, ["a", "b", "c"], targets)
    assert given.tolist() == [1.0, 4.0, 1.0]


# training and its run directory


def test_training_writes_thresholds_and_multi_label_metrics(ws):
    run = ws / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["multi_label"] and metrics["metric"] == "micro_f1"
    for split in ("valid", "test"):
        assert {"micro_f1", "macro_f1", "samples_f1", "hamming_loss", "at_0.5"} <= set(metrics[split])
    assert metrics["test"]["micro_f1"] > 0.9  # keyword topics: easy for a GRU
    saved = json.loads((run / "thresholds.json").read_text())
    assert sorted(saved["thresholds"]) == LABELS
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


def test_eval_reports_every_multi_label_score_and_draws_the_per_label_chart(ws):
    result = rnnclf("eval", "run", "--format", "json", cwd=ws)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metrics = json.loads((ws / "run" / "metrics.json").read_text())
    assert report["micro_f1"] == pytest.approx(metrics["test"]["micro_f1"])
    assert (ws / "run" / "eval" / "test_label_f1.png").stat().st_size > 5000
    assert not (ws / "run" / "eval" / "test_confusion_matrix.png").exists()
    table = rnnclf("eval", "run", "--format", "table", cwd=ws).stdout
    assert "micro F1" in table and "Hamming loss" in table and "threshold" in table
    strict = json.loads(rnnclf("eval", "run", "--format", "json", "--threshold", "0.99", cwd=ws).stdout)
    assert strict["micro_recall"] < report["micro_recall"]
    assert set(v["threshold"] for v in strict["per_class"].values()) == {0.99}
    assert (ws / "run" / "eval" / "test-threshold0.99.json").exists()


def test_predict_gives_the_labels_over_their_thresholds_and_every_score(ws):
    texts = ["the team and the coach", "rain and the band album", "the movie was really a story"]
    result = rnnclf("predict", "run", *texts, "--format", "json", cwd=ws)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["labels"] for row in rows] == [["sport"], ["music", "weather"], []]  # none: an empty list
    assert all(sorted(row["scores"]) == LABELS and "top" not in row for row in rows)
    top = json.loads(rnnclf("predict", "run", texts[2], "--top-k", "2", "--format", "json", cwd=ws).stdout)
    assert top["labels"] == [] and len(top["top"]) == 2  # ranked anyway, still no label decided
    everything = json.loads(rnnclf("predict", "run", texts[2], "--threshold", "0", "--format", "json", cwd=ws).stdout)
    assert sorted(everything["labels"]) == LABELS
    table = rnnclf("predict", "run", *texts, "--format", "table", cwd=ws).stdout
    assert "(no label)" in table and "sport" in table


def test_the_predictor_applies_the_run_thresholds(ws):
    predictor = Predictor.load(ws / "run", "cpu")
    texts = [text for text, _ in multi_label_task(200, seed=9)]
    probabilities = predictor.predict_proba(texts)
    decided = predictor.predict_labels(texts)
    thresholds = json.loads((ws / "run" / "thresholds.json").read_text())["thresholds"]
    for row, found in zip(probabilities, decided, strict=True):
        assert found.labels == [label for label, p in zip(LABELS, row, strict=True) if p >= thresholds[label]]
    assert np.all((probabilities >= 0) & (probabilities <= 1)) and not np.allclose(probabilities.sum(axis=1), 1)


def test_serve_answers_label_sets_and_shows_the_thresholds(ws):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rnnclf.serve.app import create_app

    client = TestClient(create_app(ws / "run"))
    answer = client.post("/predict", json={"texts": ["the team and the coach", "the movie was"], "top_k": 1}).json()
    assert [p["labels"] for p in answer["predictions"]] == [["sport"], []]
    assert len(answer["predictions"][1]["top"]) == 1 and sorted(answer["predictions"][0]["scores"]) == LABELS
    info = client.get("/info").json()
    saved = json.loads((ws / "run" / "thresholds.json").read_text())["thresholds"]
    assert info["multi_label"] and info["thresholds"] == pytest.approx(saved)


def test_onnx_export_carries_the_thresholds_and_decides_as_torch(ws, tmp_path):
    pytest.importorskip("onnxruntime")
    from rnnclf.inference.onnx import OnnxPredictor

    result = rnnclf("export", "run", "--out", str(tmp_path / "m.onnx"), cwd=ws)
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "m.onnx.json").read_text())
    saved = json.loads((ws / "run" / "thresholds.json").read_text())["thresholds"]
    assert sidecar["multi_label"] and sidecar["thresholds"] == saved
    rnnclf("export", "run", cwd=ws)
    texts = [text for text, _ in multi_label_task(100, seed=11)]
    onnx = OnnxPredictor.load(ws / "run")
    torch_predictor = Predictor.load(ws / "run", "cpu")
    assert np.abs(onnx.predict_proba(texts) - torch_predictor.predict_proba(texts)).max() < 1e-4
    assert [s.labels for s in onnx.predict_labels(texts)] == [s.labels for s in torch_predictor.predict_labels(texts)]
    cli = rnnclf("predict", "run", texts[0], "--backend", "onnx", "--format", "json", cwd=ws)
    assert json.loads(cli.stdout)["labels"] == torch_predictor.predict_labels(texts[:1])[0].labels


def test_report_compares_multi_label_runs_by_micro_and_macro_f1(ws):
    result = rnnclf("report", "run", "--format", "json", cwd=ws)
    row = json.loads(result.stdout)[0]
    metrics = json.loads((ws / "run" / "metrics.json").read_text())
    assert row["test_micro_f1"] == metrics["test"]["micro_f1"] and row["test_macro_f1"] == metrics["test"]["macro_f1"]
    assert row["valid_micro_f1"] == metrics["valid"]["micro_f1"]


@pytest.mark.parametrize(
    "model",
    [
        "{encoder: lstm, hidden_size: 16, num_layers: 2, dropout: 0.1, pooling: last}",
        "{encoder: rnn, hidden_size: 16, bidirectional: false, pooling: mean}",
        "{encoder: bag, pooling: max}",
    ],
)
def test_every_encoder_and_pooling_trains_multi_label(tmp_path, model):
    write_jsonl(tmp_path / "train.jsonl", multi_label_task(600, seed=6))
    text = (
        "data: {train: train.jsonl, multi_label: true, label_field: labels}\nembedding: {dim: 16}\n"
        f"model: {model}\ntrain: {{epochs: 2, class_weights: balanced, label_smoothing: 0.1, num_threads: 1}}\n"
        f"output: {{run_dir: {tmp_path / 'run'}}}\n"
    )
    summary = train(load_config(_config(tmp_path, text)), log=quiet)
    assert summary["multi_label"] and 0 < summary["valid"]["micro_f1"] <= 1
    assert (tmp_path / "run" / "thresholds.json").exists()


def test_threshold_modes_global_fixed_and_auto(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", multi_label_task(400, seed=7))
    for mode in ("global", "fixed", "auto"):
        text = (
            "data: {train: train.jsonl, multi_label: true, label_field: labels}\nembedding: {dim: 8}\n"
            f"model: {{encoder: gru, hidden_size: 8}}\ntrain: {{epochs: 1, thresholds: {mode}, num_threads: 1}}\n"
            f"output: {{run_dir: {tmp_path / mode}}}\n"
        )
        train(load_config(_config(tmp_path, text)), log=quiet)
        saved = json.loads((tmp_path / mode / "thresholds.json").read_text())
        values = set(saved["thresholds"].values())
        if mode == "auto":
            assert saved["chosen_by"] == "auto" and set(saved["held_out_micro_f1"]) == {"fixed", "global", "per_label"}
        else:
            assert len(values) == 1 and (values == {0.5}) == (mode == "fixed")


def test_auto_keeps_per_label_thresholds_only_where_they_generalise():
    from rnnclf.evaluation.thresholds import choose_thresholds

    rng = np.random.default_rng(0)
    labels = ["low", "high"]
    targets = (rng.random((600, 2)) < 0.3).astype(np.uint8)
    # "low" separates at 0.2, "high" at 0.8: one threshold for both cannot fit, per-label ones do
    centres = np.where(targets == 1, [0.3, 0.9], [0.1, 0.7])
    probs = np.clip(centres + rng.normal(0, 0.04, targets.shape), 0, 1)
    _, info = choose_thresholds(probs, targets, labels, "auto")
    assert info["method"] == "per_label_f1" and info["chosen_by"] == "auto"
    # calibrated probabilities of 40 rare labels: per-label tuning on a few hundred texts fits noise
    probs = rng.beta(0.3, 4, size=(400, 40))
    targets = (rng.random(probs.shape) < probs).astype(np.uint8)
    _, info = choose_thresholds(probs, targets, [f"l{i}" for i in range(40)], "auto")
    held_out = info["held_out_micro_f1"]
    assert info["method"] != "per_label_f1" and held_out["per_label"] < max(held_out["fixed"], held_out["global"])


def test_a_killed_multi_label_run_resumes_exactly(tmp_path):
    from test_resume import assert_same_as_reference, interrupt, resume, start

    write_jsonl(tmp_path / "train.jsonl", multi_label_task(3000, seed=8))
    write_jsonl(tmp_path / "test.jsonl", multi_label_task(300, seed=9))
    (tmp_path / "config.yaml").write_text(
        CONFIG.replace("epochs: 5, batch_size: 32", "epochs: 2, batch_size: 16, save_every: 10")
    )
    assert start(tmp_path, "reference").wait(timeout=600) == 0
    process = interrupt(tmp_path, "killed", signal.SIGKILL, after_step=120)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    result = resume(tmp_path, "killed")
    assert result.returncode == 0, result.stderr
    assert_same_as_reference(tmp_path, "killed")
    assert (tmp_path / "killed" / "thresholds.json").read_text() == (
        tmp_path / "reference" / "thresholds.json"
    ).read_text()


def test_two_processes_train_a_multi_label_run(ws, tmp_path):
    result = rnnclf(
        "train",
        "--config",
        "ml.yaml",
        "--run-dir",
        str(tmp_path / "ddp"),
        "--nproc",
        "2",
        "--set",
        "train.epochs=2",
        cwd=ws,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["multi_label"] and metrics["test"]["micro_f1"] > 0.5
    assert (tmp_path / "ddp" / "thresholds.json").exists()


def test_threshold_mistakes_are_one_line(ws):
    assert_user_error(rnnclf("predict", "run", "x", "--threshold", "1.5", cwd=ws), "--threshold 1.5", "between 0 and 1")
    assert_user_error(rnnclf("eval", "run", "--threshold", "-0.1", cwd=ws), "between 0 and 1")


def test_the_output_bias_starts_at_each_label_frequency():
    from rnnclf.training.losses import label_prior_logits

    targets = np.zeros((1000, 3), dtype=np.uint8)
    targets[:250, 0], targets[:10, 1] = 1, 1  # shares 0.25, 0.01 and 0 (kept at 1e-4)
    shares = torch.sigmoid(torch.from_numpy(label_prior_logits(targets))).numpy()
    assert shares == pytest.approx([0.25, 0.01, 1e-4], rel=1e-4)


def test_int8_is_checked_on_label_sets(ws):
    result = rnnclf("export", "run", "--quantize", "int8", cwd=ws)
    assert result.returncode == 0, result.stderr
    record = json.loads((ws / "run" / "int8.json").read_text())
    assert record["agreement"] >= 0.99  # the share of validation texts given the same set of labels
    report = json.loads(rnnclf("eval", "run", "--int8", "--format", "json", cwd=ws).stdout)
    assert report["multi_label"] and abs(report["micro_f1"] - report["fp32"]["micro_f1"]) < 0.02
