"""The engine's shape and policies: inference loads no training code, threads are set once, precision."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from rnnclf.engine.device import Precision, choose_precision, recurrent_dtype
from rnnclf.engine.inference import predict_logits
from rnnclf.model import RNNClassifier
from rnnclf.tokenizer import EncodedTexts

TRAINING_MODULES = {
    "rnnclf.engine.trainer",
    "rnnclf.engine.step",
    "rnnclf.engine.checkpoint",
    "rnnclf.engine.session",
    "rnnclf.engine.distributed",
    "rnnclf.token_cache",
    "rnnclf.embeddings",
}


@pytest.mark.parametrize("module", ["rnnclf.serve", "rnnclf.predict", "rnnclf.export", "rnnclf.evaluate"])
def test_inference_imports_no_training_code(module):
    code = f"import {module}, sys; print(sorted(m for m in sys.modules if m.startswith('rnnclf')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(eval(result.stdout))
    assert module in loaded and "rnnclf.engine.inference" in loaded
    assert not loaded & TRAINING_MODULES, loaded & TRAINING_MODULES


def random_texts(count: int, seed: int = 0) -> EncodedTexts:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, size=count)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return EncodedTexts(rng.integers(2, 50, size=offsets[-1]).astype(np.int32), offsets)


def test_prediction_never_changes_the_thread_count(monkeypatch):
    """Threads are a process-wide setting made once per command: concurrent requests must not race on it."""
    torch.manual_seed(0)
    model = RNNClassifier(50, 3, embedding_dim=8, encoder="gru", hidden_size=8)
    encoded = random_texts(500)
    expected = predict_logits(model, encoded, torch.device("cpu"), workers=1)

    def forbidden(count: int) -> None:
        raise AssertionError("torch.set_num_threads called while predicting")

    monkeypatch.setattr(torch, "set_num_threads", forbidden)
    for workers in (1, 2, 4):
        got = predict_logits(model, encoded, torch.device("cpu"), workers=workers)
        np.testing.assert_array_equal(got, expected)


def test_precision_policy():
    """The scaler follows the dtype actually computed in, not the one autocast was asked for."""
    assert Precision().scaler is False and Precision().describe() == "off"
    assert Precision(torch.bfloat16, torch.bfloat16).scaler is False
    # cuDNN's RNN under bf16 autocast may run in fp16: then the gradient scaler must be on
    mixed = Precision(torch.bfloat16, torch.float16)
    assert mixed.scaler is True
    assert mixed.describe() == "bfloat16 (recurrent layers compute in float16), gradient scaler on"
    assert Precision(torch.float16, torch.float16).describe() == "float16, gradient scaler on"
    assert choose_precision(torch.device("cpu"), amp=True) == Precision()  # full precision on the CPU


def test_recurrent_dtype_probe_runs_on_the_cpu():
    # the probe that reads the recurrent layers' real dtype; on CUDA it decides the scaler
    assert recurrent_dtype(torch.device("cpu"), torch.bfloat16) in (torch.bfloat16, torch.float32)
