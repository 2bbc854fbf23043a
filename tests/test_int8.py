"""int8 prediction: allowed only after a check on the run's validation texts; predict, eval and serve use it."""

import json
import shutil

import pytest
import torch
from conftest import order_task, write_csv
from test_cli import assert_user_error, rnnclf

from rnnclf.config.loading import load_config
from rnnclf.errors import RnnclfError
from rnnclf.inference.int8 import judge
from rnnclf.recipes.classify import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    write_csv(folder / "train.csv", order_task(1500, seed=11))
    write_csv(folder / "test.csv", order_task(300, seed=12))
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\nembedding: {dim: 16}\n"
        "model: {encoder: lstm, hidden_size: 24}\ntrain: {epochs: 4, batch_size: 32, lr: 0.01}\n"
    )
    train(load_config(folder / "config.yaml", [f"output.run_dir={folder / 'run'}"]), log=lambda line: None)
    return folder / "run"


def test_int8_needs_its_check_first(run, tmp_path):
    fresh = tmp_path / "fresh"
    shutil.copytree(run, fresh, ignore=shutil.ignore_patterns("int8.json"))
    assert_user_error(rnnclf("predict", str(fresh), "not good at all", "--int8"), "--quantize int8")
    assert_user_error(rnnclf("export", str(fresh), "--quantize", "int8", "--format", "onnx"), "no --format")
    assert not (fresh / "int8.json").exists()


def test_check_then_predict_eval_with_int8(run):
    done = rnnclf("export", str(run), "--quantize", "int8")
    assert done.returncode == 0, done.stderr
    record = json.loads((run / "int8.json").read_text())
    assert record["agreement"] >= 0.99 and record["texts"] == 150
    assert record["accuracy_fp32"] - record["accuracy_int8"] <= 0.003
    texts = ["the movie was not good", "a really fine story", "not bad", "the acting was awful not"]
    fp32 = rnnclf("predict", str(run), *texts, "--format", "json")
    int8 = rnnclf("predict", str(run), *texts, "--format", "json", "--int8")
    assert int8.returncode == 0, int8.stderr
    a, b = ([json.loads(line) for line in out.stdout.splitlines()] for out in (fp32, int8))
    assert [x["label"] for x in a] == [x["label"] for x in b]
    assert max(abs(x["probability"] - y["probability"]) for x, y in zip(a, b, strict=True)) < 0.05
    evaluation = rnnclf("eval", str(run), "--int8", "--format", "json")
    assert evaluation.returncode == 0, evaluation.stderr
    report = json.loads(evaluation.stdout)
    assert report["agreement"] >= 0.98 and abs(report["accuracy"] - report["fp32"]["accuracy"]) < 0.02
    assert (run / "eval" / "test-int8.json").exists()


def test_weights_trained_again_need_a_new_check(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    if not (copy / "int8.json").exists():
        (copy / "int8.json").write_text(json.dumps({"weights_sha256": "0" * 64}))
    else:
        record = json.loads((copy / "int8.json").read_text())
        (copy / "int8.json").write_text(json.dumps(record | {"weights_sha256": "0" * 64}))
    assert_user_error(rnnclf("predict", str(copy), "good", "--int8"), "checked other weights")


def test_a_failing_check_writes_nothing(run, tmp_path, monkeypatch):
    from rnnclf.inference import int8_check

    copy = tmp_path / "broken"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("int8.json"))

    def scrambled(model):  # an "int8" model that answers at random: the check must refuse it
        with torch.no_grad():
            model.head.weight.copy_(torch.randn_like(model.head.weight) * 10)
        return model

    monkeypatch.setattr(int8_check, "quantize_int8", scrambled)
    with pytest.raises(RnnclfError, match="int8 is not exact enough for this run: labels agree"):
        int8_check.check_int8(copy, log=lambda line: None)
    assert not (copy / "int8.json").exists()


def test_judge_thresholds():
    assert judge(0.995, 0.9, 0.898) is None
    assert "labels agree with fp32 on 98.00%" in judge(0.98, 0.9, 0.9)
    assert "drops 0.50 points" in judge(0.995, 0.9, 0.895)
    assert judge(0.999, 0.9, 0.897) is None  # exactly 0.3 points, in floating point


def test_serve_answers_with_the_int8_model(run):
    from fastapi.testclient import TestClient

    from rnnclf.inference.predictor import Predictor
    from rnnclf.serve.app import create_app

    if not (run / "int8.json").exists():
        assert rnnclf("export", str(run), "--quantize", "int8").returncode == 0
    predictor = Predictor.load(run, int8=True)
    assert type(predictor.model.head).__name__ == "Linear" and "quantized" in type(predictor.model.head).__module__
    client = TestClient(create_app(predictor))
    answer = client.post("/predict", json={"texts": ["not good", "really great"]})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
