"""The engine's shape and policies: inference loads no training code, threads are set once, precision."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from rnnclf.data.tokenizer import EncodedTexts
from rnnclf.device.precision import Precision, choose_precision, recurrent_dtype
from rnnclf.inference.logits import predict_logits
from rnnclf.models.classifier import RNNClassifier

TRAINING_CODE = ("rnnclf.training", "rnnclf.recipes", "rnnclf.data.token_cache", "rnnclf.models.embeddings")


@pytest.mark.parametrize(
    "module", ["rnnclf.serve.app", "rnnclf.inference.predictor", "rnnclf.inference.onnx", "rnnclf.inference.evaluate"]
)
def test_inference_imports_no_training_code(module):
    code = f"import {module}, sys; print(sorted(m for m in sys.modules if m.startswith('rnnclf')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(eval(result.stdout))
    assert module in loaded and "rnnclf.inference.logits" in loaded
    training = {name for name in loaded if name.startswith(TRAINING_CODE)}
    assert not training, training


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


def test_threads_fit_the_cores_other_processes_leave():
    from rnnclf.device.cores import threads_for

    assert threads_for(2, None) == 2  # nothing known: every core
    assert threads_for(2, 0.0) == 2 and threads_for(2, 0.4) == 2
    assert threads_for(2, 0.6) == 1 and threads_for(2, 1.0) == 1
    assert threads_for(2, 2.0) == 1  # never fewer than one
    assert threads_for(8, 2.7) == 5


def test_thread_governor_follows_the_load(monkeypatch):
    from rnnclf.device import threads

    said = []
    loads = iter([0.0, 1.0, 0.0, 0.0, 1.2])
    monkeypatch.setattr(threads.OtherLoad, "measure", lambda self: next(loads))
    set_to = []
    monkeypatch.setattr(threads, "use_cpu_threads", lambda count: set_to.append(count) or count)
    governor = threads.ThreadGovernor(2, None, said.append)
    governor.CHECK_SECONDS = 0.0
    assert governor.start() == (2, "2 cores available, other processes use 0.0")
    governor.check()  # another job uses a core: down at once
    assert governor.threads == 1 and said == ["threads: 2 -> 1 (2 cores available, other processes use 1.0)"]
    governor.check()  # idle once: not yet back up
    assert governor.threads == 1
    governor.check()  # idle twice in a row: back up
    assert governor.threads == 2 and set_to == [2, 1, 2]
    governor.check()
    assert governor.threads == 1
    assert [c["threads"] for c in governor.changes] == [1, 2, 1]


def test_a_fixed_thread_count_never_changes(monkeypatch):
    from rnnclf.device import threads

    monkeypatch.setattr(threads.OtherLoad, "measure", lambda self: 2.0)
    governor = threads.ThreadGovernor(2, 2, lambda line: None)
    governor.CHECK_SECONDS = 0.0
    assert governor.start() == (2, "train.num_threads")
    governor.check()
    assert governor.threads == 2 and governor.changes == []


def test_subnormal_floats_are_flushed():
    from rnnclf.device.threads import use_cpu_threads

    threads = torch.get_num_threads()
    use_cpu_threads(threads)
    tiny = torch.tensor([1e-40], dtype=torch.float32)  # subnormal in fp32
    assert (tiny * 1.0).item() == 0.0
