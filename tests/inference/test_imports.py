"""Inference, serving and evaluation load no training code."""

import subprocess
import sys

import pytest

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
