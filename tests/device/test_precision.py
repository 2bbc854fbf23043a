"""Mixed precision: the scaler follows the dtype actually computed in; full precision on the CPU."""

import torch

from rnnclf.device.precision import Precision, choose_precision, recurrent_dtype


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
