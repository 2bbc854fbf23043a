"""`rnnclf eval` end to end: tables and JSON, splits and files, multi-label scores, calibration, one-line
mistakes."""

import importlib.util
import json

import numpy as np
import pytest

from rnnclf.inference.evaluate import labelled_split
from rnnclf.inference.predictor import Predictor

from helpers.cli import assert_user_error, rnnclf
from helpers.data import write_csv
from helpers.mistakes import broken_run, check_mistake, set_env_version


def test_eval_table_and_json(order_run, order_workspace):
    table = rnnclf("eval", str(order_run), "--format", "table")
    assert table.returncode == 0, table.stderr
    assert "macro F1" in table.stdout and "confusion matrix" in table.stdout
    result = rnnclf("eval", str(order_run), "--split", "valid")
    report = json.loads(result.stdout)
    assert set(report["per_class"]) == {"neg", "pos"}
    assert report["support"] == 80 and (order_run / "eval" / "valid.json").exists()
    on_file = json.loads(rnnclf("eval", str(order_run), "--data", str(order_workspace / "test.csv")).stdout)
    summary = json.loads((order_run / "metrics.json").read_text())
    assert on_file["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    # a file's results never replace a split's: eval/test.json (table run above) and eval/file-test.json
    assert (order_run / "eval" / "test.json").exists() and (order_run / "eval" / "file-test.json").exists()


def test_eval_of_the_test_split_needs_only_the_test_file(order_run, order_workspace):
    moved = order_workspace / "train.moved.csv"
    (order_workspace / "train.csv").rename(moved)
    try:
        result = rnnclf("eval", str(order_run), "--split", "test")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["support"] == 200
        # the valid split is carved from train: without it, one line that names the file and --data
        assert_user_error(rnnclf("eval", str(order_run), "--split", "valid"), "train.csv", "--data FILE")
    finally:
        moved.rename(order_workspace / "train.csv")


def test_eval_and_predict_mistakes(order_run, order_workspace):
    write_csv(order_workspace / "unseen_eval.csv", [("a good movie", "pos"), ("a b", "maybe")])
    assert_user_error(
        rnnclf("eval", str(order_run), "--data", str(order_workspace / "unseen_eval.csv")),
        "line 3: label 'maybe'",
        "never seen in training",
    )
    assert_user_error(rnnclf("eval", str(order_workspace / "nope")), "run directory not found")
    assert_user_error(rnnclf("predict", str(order_run)), "no texts to classify")
    assert_user_error(rnnclf("predict", str(order_run), "  "), "text 1: empty text")
    assert_user_error(
        rnnclf("predict", str(order_run), "--input", str(order_workspace / "none.txt")), "none.txt: file not found"
    )


def test_eval_reports_every_multi_label_score_and_draws_the_per_label_chart(multi_label_workspace):
    result = rnnclf("eval", "run", "--format", "json", cwd=multi_label_workspace)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metrics = json.loads((multi_label_workspace / "run" / "metrics.json").read_text())
    assert report["micro_f1"] == pytest.approx(metrics["test"]["micro_f1"])
    assert (multi_label_workspace / "run" / "eval" / "test_label_f1.png").stat().st_size > 5000
    assert not (multi_label_workspace / "run" / "eval" / "test_confusion_matrix.png").exists()
    table = rnnclf("eval", "run", "--format", "table", cwd=multi_label_workspace).stdout
    assert "micro F1" in table and "Hamming loss" in table and "threshold" in table
    strict = json.loads(
        rnnclf("eval", "run", "--format", "json", "--threshold", "0.99", cwd=multi_label_workspace).stdout
    )
    assert strict["micro_recall"] < report["micro_recall"]
    assert set(v["threshold"] for v in strict["per_class"].values()) == {0.99}
    assert (multi_label_workspace / "run" / "eval" / "test-threshold0.99.json").exists()


def test_eval_shows_calibration_before_and_after_and_draws_the_diagram(calibration_workspace):
    result = rnnclf("eval", str(calibration_workspace / "run"), "--format", "json", cwd=calibration_workspace)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["calibration"]
    assert set(figures) >= {"ece", "ece_before", "brier", "brier_before", "temperature", "reliability"}
    assert sum(b["count"] for b in figures["reliability"]) == 300 and len(figures["reliability"]) == 15
    assert figures["ece"] != figures["ece_before"]
    table = rnnclf("eval", str(calibration_workspace / "run"), "--format", "table", cwd=calibration_workspace)
    assert "calibration: ECE" in table.stdout and "->" in table.stdout
    if importlib.util.find_spec("matplotlib"):
        assert (calibration_workspace / "run" / "eval" / "test_calibration.png").stat().st_size > 0
    raw = rnnclf("eval", str(calibration_workspace / "raw"), "--format", "table", cwd=calibration_workspace)
    assert "(not calibrated)" in raw.stdout


def test_eval_with_int8(int8_run, int8_checked):
    """eval --int8 reports the int8 model beside fp32 on the test split; the agreement it reports is the share of
    texts the two predictors label alike, recomputed here."""
    assert int8_checked.returncode == 0, int8_checked.stderr
    evaluation = rnnclf("eval", str(int8_run), "--int8", "--format", "json")
    assert evaluation.returncode == 0, evaluation.stderr
    report = json.loads(evaluation.stdout)
    assert report["agreement"] >= 0.98 and abs(report["accuracy"] - report["fp32"]["accuracy"]) < 0.02
    assert (int8_run / "eval" / "test-int8.json").exists()
    int8, fp32 = Predictor.load(int8_run, "cpu", int8=True), Predictor.load(int8_run, "cpu")
    test, _ = labelled_split(fp32.run, None, "test")
    texts = list(test.texts)
    quantized, reference = int8.predict_proba(texts), fp32.predict_proba(texts)
    same = quantized.argmax(axis=1) == reference.argmax(axis=1)
    assert report["support"] == len(texts) and report["agreement"] == pytest.approx(float(np.mean(same)))
    # the int8 figures are the int8 model's: its loss is the cross-entropy of int8's probabilities, not fp32's
    targets = np.array([fp32.labels.index(label) for label in test.labels])
    loss = [float(-np.log(p[np.arange(len(targets)), targets]).mean()) for p in (quantized, reference)]
    assert (report["loss"], report["fp32"]["loss"]) == pytest.approx(loss, rel=1e-4) and loss[0] != loss[1]


CASES = {
    "unknown option": (lambda ws: ["eval", str(ws / "run"), "--splitt", "test"], 2, "No such option"),
    "eval missing run": (lambda ws: ["eval", str(ws / "nope")], 2, "run directory not found"),
    "eval file not run": (lambda ws: ["eval", str(ws / "train.csv")], 2, "not a directory"),
    "eval data and split": (lambda ws: ["eval", str(ws / "run"), "--data", "x.csv", "--split", "test"], 2, "not both"),
    "eval unseen label": (
        lambda ws: ["eval", str(ws / "run"), "--data", str(ws / "unseen.csv")],
        2,
        "line 3: label 'maybe'",
    ),
    "eval no test split": (lambda ws: ["eval", str(ws / "run"), "--split", "test"], 2, "no test data"),
    "incompatible version": (lambda ws: ["eval", broken_run(ws, set_env_version)], 2, "format 99"),
    "truncated weights": (
        lambda ws: [
            "eval",
            broken_run(
                ws, lambda r: (r / "model.safetensors").write_bytes((r / "model.safetensors").read_bytes()[:300])
            ),
        ],
        2,
        "damaged or truncated",
    ),
    "multi-label label unseen in training": (
        lambda ws: ["eval", str(ws / "ml_run"), "--data", str(ws / "ml_unseen.jsonl")],
        2,
        "ml_unseen.jsonl: line 2: label 'space' in 'labels' was never seen in training",
    ),
    "threshold below 0": (lambda ws: ["eval", str(ws / "ml_run"), "--threshold", "-0.2"], 2, "between 0 and 1"),
    "eval a language model": (lambda ws: ["eval", str(ws / "lm")], 2, "a language model (rnnclf pretrain)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_matrix(mistakes, case, capsys, monkeypatch):
    check_mistake(mistakes, CASES[case], capsys, monkeypatch)
