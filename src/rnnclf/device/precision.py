"""Where tensors are computed and in what precision: the device, and the mixed-precision policy."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnclf.errors import RnnclfError


def choose_device(name: str) -> torch.device:
    """auto = CUDA when torch sees one; asking for CUDA without one is a mistake, not a silent fallback."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RnnclfError("train.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device("cuda" if name in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class Precision:
    """What mixed precision asks for and what the recurrent layers then compute in.

    Under CUDA autocast, cuDNN's RNN kernels may run in fp16 although bf16 was asked for (autocast's RNN
    wrapper casts to half): the gradient scaler must follow the dtype actually used, not the one asked for.
    """

    autocast: torch.dtype | None = None  # None: full precision
    recurrent: torch.dtype | None = None  # the dtype a recurrent layer's output has under autocast

    @property
    def scaler(self) -> bool:
        """fp16 anywhere in the step needs loss scaling, or small gradients underflow to zero."""
        return torch.float16 in (self.autocast, self.recurrent)

    def describe(self) -> str:
        if self.autocast is None:
            return "off"
        asked = _name(self.autocast)
        if self.recurrent not in (None, self.autocast):
            asked += f" (recurrent layers compute in {_name(self.recurrent)})"
        return asked + (", gradient scaler on" if self.scaler else "")


def _name(dtype: torch.dtype | None) -> str:
    return str(dtype).removeprefix("torch.")


def choose_precision(device: torch.device, amp: bool, probe: bool = True) -> Precision:
    """Full precision on the CPU or with amp off; on CUDA bf16 where supported, else fp16, with the recurrent
    layers' real dtype found by running one (`probe`)."""
    if device.type != "cuda" or not amp:
        return Precision()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Precision(dtype, recurrent_dtype(device, dtype) if probe else dtype)


def recurrent_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    """The dtype of an LSTM's output under autocast to `dtype` on `device`."""
    layer = nn.LSTM(8, 8, batch_first=True).to(device)
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
        return layer(torch.zeros(2, 3, 8, device=device))[0].dtype
