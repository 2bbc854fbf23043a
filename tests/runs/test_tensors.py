"""Tensors in the run directory: safetensors only, a damaged file named in one line."""

import numpy as np
import pytest
import torch

from rnnclf.errors import RnnclfError
from rnnclf.runs.tensors import load_tensors, save_tensors


def test_truncated_safetensors_is_a_clear_error(tmp_path):
    path = tmp_path / "model.safetensors"
    save_tensors(path, {"w": torch.arange(1000.0)})
    assert load_tensors(path)["w"].sum() == np.arange(1000.0).sum()
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(RnnclfError, match="damaged or truncated"):
        load_tensors(path)
