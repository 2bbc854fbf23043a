"""`rnnclf export` end to end: ONNX (its check, predict --backend onnx, an export that stands alone, thresholds and
temperature carried)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rnnclf.inference.predictor import Predictor
from rnnclf.runs.directory import load_run

from helpers.cli import assert_user_error, rnnclf
from helpers.data import multi_label_task, order_task

onnxruntime = pytest.importorskip("onnxruntime")
export = pytest.importorskip("rnnclf.inference.onnx")


@pytest.fixture(scope="module")
def exported(export_run, export_workspace) -> subprocess.CompletedProcess:
    result = rnnclf("export", str(export_run), "--format", "onnx", cwd=export_workspace)
    assert result.returncode == 0, result.stderr
    return result


def predictions(run: Path, workspace: Path, *extra: str) -> list[dict]:
    result = rnnclf(
        "predict", str(run), "--input", "texts.txt", "--top-k", "2", "--format", "json", *extra, cwd=workspace
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_export_then_predict_with_onnx_runtime(exported, export_run, export_workspace):
    assert "texts from" in exported.stderr and "test.csv" in exported.stderr  # checked on the run's own test file
    sidecar = json.loads((export_run / "model.onnx.json").read_text())
    assert sidecar["labels"] == json.loads((export_run / "labels.json").read_text())
    assert (export_run / sidecar["model"]).is_file() and (export_run / sidecar["tokenizer"]).is_file()
    assert set(sidecar["inputs"]) == {"ids", "lengths"} and set(sidecar["outputs"]) == {"probabilities"}
    assert sidecar["check"]["max_difference"] <= 1e-4

    by_torch = predictions(export_run, export_workspace)
    by_onnx = predictions(export_run, export_workspace, "--backend", "onnx")
    assert len(by_onnx) == 60
    for torch_row, onnx_row in zip(by_torch, by_onnx, strict=True):
        assert onnx_row["label"] == torch_row["label"]
        assert [t["label"] for t in onnx_row["top"]] == [t["label"] for t in torch_row["top"]]
        for a, b in zip(onnx_row["top"], torch_row["top"], strict=True):
            assert abs(a["probability"] - b["probability"]) <= 1e-4


def test_export_and_onnx_backend_mistakes(exported, export_run, export_workspace, tmp_path):
    assert_user_error(rnnclf("export", str(tmp_path / "nowhere"), "--format", "onnx"), "run directory not found")
    assert_user_error(rnnclf("export", str(export_run), "--format", "tflite"), "--format", "tflite")
    assert_user_error(rnnclf("export", str(export_run), "--out", str(tmp_path)), "is a directory")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("config.yaml", "labels.json", "tokenizer.json", "model.safetensors"):
        (fresh / name).write_bytes((export_run / name).read_bytes())
    assert_user_error(
        rnnclf("predict", str(fresh), "some text", "--backend", "onnx"), "model.onnx", "rnnclf export", "first"
    )
    assert_user_error(rnnclf("predict", str(export_run), "", "--backend", "onnx"), "empty text")
    for name in ("model.onnx", "model.onnx.json"):
        (fresh / name).write_bytes((export_run / name).read_bytes())
    sidecar = json.loads((fresh / "model.onnx.json").read_text())
    (fresh / "model.onnx.json").write_text(json.dumps({**sidecar, "weights_sha256": "0" * 64}))
    assert_user_error(rnnclf("predict", str(fresh), "some text", "--backend", "onnx"), "other weights", "export")
    assert_user_error(rnnclf("predict", str(export_run), "a", "--backend", "onnx", "--device", "cpu"), "--device")


def test_an_export_elsewhere_stands_alone(export_run, tmp_path):
    """--out outside the run: the folder holds model, sidecar and tokenizer; a reader needs nothing else."""
    from tokenizers import Tokenizer

    from rnnclf.inference.predictor import Predictor

    out = tmp_path / "shipped" / "classifier.onnx"
    out.parent.mkdir()
    result = rnnclf("export", str(export_run), "--format", "onnx", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "classifier.onnx",
        "classifier.onnx.json",
        "classifier.tokenizer.json",
    ]
    sidecar = json.loads((out.parent / "classifier.onnx.json").read_text())
    tokenizer = Tokenizer.from_file(str(out.parent / sidecar["tokenizer"]))
    texts = ["the movie was not good", "a really fine film and story"]
    rows = [tokenizer.encode(text, add_special_tokens=False).ids or [sidecar["unk_id"]] for text in texts]
    width = max(map(len, rows))
    ids = np.array([row + [sidecar["pad_id"]] * (width - len(row)) for row in rows], dtype=np.int64)
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"ids": ids, "lengths": lengths})[0]
    expected = Predictor.load(export_run, device="cpu").predict_proba(texts)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_onnx_export_carries_the_thresholds_and_decides_as_torch(multi_label_workspace, tmp_path):
    pytest.importorskip("onnxruntime")
    from rnnclf.inference.onnx import OnnxPredictor

    result = rnnclf("export", "run", "--out", str(tmp_path / "m.onnx"), cwd=multi_label_workspace)
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "m.onnx.json").read_text())
    saved = json.loads((multi_label_workspace / "run" / "thresholds.json").read_text())["thresholds"]
    assert sidecar["multi_label"] and sidecar["thresholds"] == saved
    rnnclf("export", "run", cwd=multi_label_workspace)
    texts = [text for text, _ in multi_label_task(100, seed=11)]
    onnx = OnnxPredictor.load(multi_label_workspace / "run")
    torch_predictor = Predictor.load(multi_label_workspace / "run", "cpu")
    assert np.abs(onnx.predict_proba(texts) - torch_predictor.predict_proba(texts)).max() < 1e-4
    assert [s.labels for s in onnx.predict_labels(texts)] == [s.labels for s in torch_predictor.predict_labels(texts)]
    cli = rnnclf("predict", "run", texts[0], "--backend", "onnx", "--format", "json", cwd=multi_label_workspace)
    assert json.loads(cli.stdout)["labels"] == torch_predictor.predict_labels(texts[:1])[0].labels


def test_onnx_export_applies_the_temperature(calibration_workspace):
    pytest.importorskip("onnxruntime")
    from rnnclf.inference.onnx import OnnxPredictor

    result = rnnclf("export", str(calibration_workspace / "run"), cwd=calibration_workspace)
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((calibration_workspace / "run" / "model.onnx.json").read_text())
    assert sidecar["temperature"] == pytest.approx(float(load_run(calibration_workspace / "run").temperature[0]))
    assert abs(sidecar["temperature"] - 1) > 0.05  # the comparison below can tell calibrated from raw
    texts = [text for text, _ in order_task(40, 8)]
    onnx = OnnxPredictor.load(calibration_workspace / "run").predict_proba(texts)
    assert np.allclose(onnx, Predictor.load(calibration_workspace / "run", "cpu").predict_proba(texts), atol=1e-4)
