"""Every command on a run with a wide head, and on the linear model alone: eval (beside its linear baseline),
predict (--explain shows the n-grams), report, export to ONNX (checked against PyTorch) and int8, serve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.data import topic_task, write_csv


def rnnclf(folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnclf", *args], cwd=folder, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wide-commands")
    write_csv(folder / "train.csv", topic_task(600, 1))
    write_csv(folder / "test.csv", topic_task(150, 2))
    (folder / "wide.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\nembedding: {dim: 8}\n"
        "model: {encoder: gru, hidden_size: 8, wide: true}\ntrain: {epochs: 2, num_threads: 1}\n"
    )
    (folder / "linear.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\nmodel: {encoder: none, wide: true}\n"
    )
    for name in ("wide", "linear"):
        done = rnnclf(folder, "train", "--config", f"{name}.yaml", "--run-dir", name)
        assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.parametrize("name", ["wide", "linear"])
def test_eval_report_and_predict(runs, name):
    evaluated = rnnclf(runs, "eval", name, "--split", "test", "--format", "table")
    assert evaluated.returncode == 0, evaluated.stderr
    headline = evaluated.stdout.splitlines()[1]
    assert headline.startswith("accuracy ")
    assert ("(linear baseline " in headline) == (name == "wide")  # the linear model is its own baseline
    predicted = rnnclf(runs, "predict", name, "goal team coach", "bank loan rate", "--format", "json")
    assert [json.loads(line)["label"] for line in predicted.stdout.splitlines()] == ["sport", "money"]
    explained = rnnclf(runs, "predict", name, "storm and cold wind", "--explain", "--format", "json")
    record = json.loads(explained.stdout)
    assert record["label"] == "weather" and record["ngrams"]["total"] > 0
    assert {ngram for ngram, _ in record["ngrams"]["largest"]} & {"storm", "cold", "wind"}
    report = rnnclf(runs, "report", "wide", "linear", "--format", "json")
    assert report.returncode == 0, report.stderr


@pytest.mark.parametrize("name", ["wide", "linear"])
def test_onnx_export_and_prediction(runs, name):
    pytest.importorskip("onnxruntime")
    exported = rnnclf(runs, "export", name)
    assert exported.returncode == 0, exported.stderr
    sidecar = json.loads((runs / name / "model.onnx.json").read_text())
    assert list(sidecar["inputs"])[-3:] == ["ngram_indices", "ngram_offsets", "ngram_values"]
    assert ("ids" in sidecar["inputs"]) == (name == "wide") and sidecar["check"]["max_difference"] <= 1e-4
    torch_says = rnnclf(runs, "predict", name, "goal goal", "snow", "--format", "json").stdout
    onnx_says = rnnclf(runs, "predict", name, "goal goal", "snow", "--format", "json", "--backend", "onnx").stdout
    assert [json.loads(x)["label"] for x in onnx_says.splitlines()] == [
        json.loads(x)["label"] for x in torch_says.splitlines()
    ]


def test_int8_keeps_the_wide_head(runs):
    checked = rnnclf(runs, "export", "wide", "--quantize", "int8")
    assert checked.returncode == 0, checked.stderr
    predicted = rnnclf(runs, "predict", "wide", "goal team", "--int8", "--format", "json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["label"] == "sport"


def test_serve_answers_with_the_wide_head(runs):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rnnclf.inference.predictor import Predictor
    from rnnclf.serve.app import create_app

    client = TestClient(create_app(Predictor.load(runs / "linear", "cpu")))
    answer = client.post("/predict", json={"texts": ["bank profit", "rain rain"]})
    assert answer.status_code == 200
    assert [p["label"] for p in answer.json()["predictions"]] == ["money", "weather"]
