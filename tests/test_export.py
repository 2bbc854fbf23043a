"""ONNX export: every model kind gives PyTorch's probabilities in ONNX Runtime; the CLI end to end."""

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import order_task, write_csv
from test_cli import assert_user_error, rnnclf, run_light
from test_model import COMBINATIONS, build, texts_to_encoded

from rnnclf.data.batching import collate
from rnnclf.errors import RnnclfError
from rnnclf.runs.directory import load_run

onnxruntime = pytest.importorskip("onnxruntime")
export = pytest.importorskip("rnnclf.inference.onnx")


@pytest.mark.parametrize(("encoder", "bidirectional", "pooling", "layers"), COMBINATIONS)
def test_onnx_gives_pytorchs_probabilities(encoder, bidirectional, pooling, layers):
    model = build(encoder, bidirectional, pooling, layers)
    session = export.session(onnxruntime, export.to_onnx(export.Probabilities(model), "test model"))
    rng = np.random.default_rng(0)
    texts = [rng.integers(2, 30, size=n).tolist() for n in (1, 50, 4, 9, 2, 9, 1, 6, 3)]
    encoded = texts_to_encoded(texts)
    # sizes and widths unlike the export example (3 texts, 7 steps), padding in all but the first two
    for index in ([0], [1], [2, 3, 4, 5, 6, 7, 8], [4, 0], [3, 1]):
        batch = collate(encoded, np.array(index))
        with torch.no_grad():
            expected = torch.softmax(model(batch.ids, batch.lengths), dim=1).numpy()
        got = session.run(None, {"ids": batch.ids.numpy(), "lengths": batch.lengths.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    write_csv(folder / "train.csv", order_task(600, seed=5))
    write_csv(folder / "test.csv", order_task(100, seed=6))
    (folder / "texts.txt").write_text("\n".join(text for text, _ in order_task(60, seed=7)) + "\n")
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\n"
        "embedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 24}\n"
        "train: {epochs: 3, batch_size: 32, lr: 0.01, seed: 1}\n"
    )
    return folder


@pytest.fixture(scope="module")
def trained(workspace) -> Path:
    result = rnnclf("train", "--config", "config.yaml", cwd=workspace)
    assert result.returncode == 0, result.stderr
    return workspace / "runs" / "config"


@pytest.fixture(scope="module")
def exported(trained, workspace) -> subprocess.CompletedProcess:
    result = rnnclf("export", str(trained), "--format", "onnx", cwd=workspace)
    assert result.returncode == 0, result.stderr
    return result


def predictions(run: Path, workspace: Path, *extra: str) -> list[dict]:
    result = rnnclf(
        "predict", str(run), "--input", "texts.txt", "--top-k", "2", "--format", "json", *extra, cwd=workspace
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_export_then_predict_with_onnx_runtime(exported, trained, workspace):
    assert "texts from" in exported.stderr and "test.csv" in exported.stderr  # checked on the run's own test file
    sidecar = json.loads((trained / "model.onnx.json").read_text())
    assert sidecar["labels"] == json.loads((trained / "labels.json").read_text())
    assert (trained / sidecar["model"]).is_file() and (trained / sidecar["tokenizer"]).is_file()
    assert set(sidecar["inputs"]) == {"ids", "lengths"} and set(sidecar["outputs"]) == {"probabilities"}
    assert sidecar["check"]["max_difference"] <= 1e-4

    by_torch = predictions(trained, workspace)
    by_onnx = predictions(trained, workspace, "--backend", "onnx")
    assert len(by_onnx) == 60
    for torch_row, onnx_row in zip(by_torch, by_onnx, strict=True):
        assert onnx_row["label"] == torch_row["label"]
        assert [t["label"] for t in onnx_row["top"]] == [t["label"] for t in torch_row["top"]]
        for a, b in zip(onnx_row["top"], torch_row["top"], strict=True):
            assert abs(a["probability"] - b["probability"]) <= 1e-4


def test_a_failed_check_writes_nothing(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # no export can pass
    with pytest.raises(RnnclfError, match="not written"):
        export.export_onnx(trained, tmp_path / "model.onnx", log=lambda message: None)
    assert list(tmp_path.iterdir()) == []


def test_generated_texts_when_the_data_is_gone(trained, tmp_path):
    run = load_run(trained)
    moved = run.config.data.model_copy(update={"train": tmp_path / "moved.csv", "test": None})
    texts, source = export.texts_to_check(replace(run, config=run.config.model_copy(update={"data": moved})))
    assert source.startswith("generated texts")
    assert max(len(text.split()) for text in texts) == 400  # one text of max_length words


def test_export_and_onnx_backend_mistakes(exported, trained, workspace, tmp_path):
    assert_user_error(rnnclf("export", str(tmp_path / "nowhere"), "--format", "onnx"), "run directory not found")
    assert_user_error(rnnclf("export", str(trained), "--format", "tflite"), "--format", "tflite")
    assert_user_error(rnnclf("export", str(trained), "--out", str(tmp_path)), "is a directory")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("config.yaml", "labels.json", "tokenizer.json", "model.safetensors"):
        (fresh / name).write_bytes((trained / name).read_bytes())
    assert_user_error(
        rnnclf("predict", str(fresh), "some text", "--backend", "onnx"), "model.onnx", "rnnclf export", "first"
    )
    assert_user_error(rnnclf("predict", str(trained), "", "--backend", "onnx"), "empty text")
    for name in ("model.onnx", "model.onnx.json"):
        (fresh / name).write_bytes((trained / name).read_bytes())
    sidecar = json.loads((fresh / "model.onnx.json").read_text())
    (fresh / "model.onnx.json").write_text(json.dumps({**sidecar, "weights_sha256": "0" * 64}))
    assert_user_error(rnnclf("predict", str(fresh), "some text", "--backend", "onnx"), "other weights", "export")
    assert_user_error(rnnclf("predict", str(trained), "a", "--backend", "onnx", "--device", "cpu"), "--device")


def test_help_imports_neither_torch_nor_onnx():
    result = run_light([["--help"], ["export", "--help"], ["predict", "--help"]], {"torch", "onnx", "onnxruntime"})
    assert "--backend" in result.stdout and "model.onnx.json" in result.stdout


def test_an_export_elsewhere_stands_alone(trained, tmp_path):
    """--out outside the run: the folder holds model, sidecar and tokenizer; a reader needs nothing else."""
    from tokenizers import Tokenizer

    from rnnclf.inference.predictor import Predictor

    out = tmp_path / "shipped" / "classifier.onnx"
    out.parent.mkdir()
    result = rnnclf("export", str(trained), "--format", "onnx", "--out", str(out))
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
    expected = Predictor.load(trained, device="cpu").predict_proba(texts)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
