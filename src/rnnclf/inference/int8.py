"""int8 prediction on the CPU: torch's dynamic quantization of the recurrent and linear layers.

Weights become int8 once, when a run is loaded (quantization is deterministic, so nothing new is stored but
RUN/int8.json: the check `rnnclf export RUN --quantize int8` made on the run's validation texts before it
allowed int8, and the digest of the weights it checked). Activations are quantized per batch, on the fly.

Measured on the quickstart model (python -m scripts.bench): torch's dynamic int8 1.9x the fp32 model; ONNX Runtime's
dynamic quantizer leaves the GRU in fp32 (it quantizes only the final MatMul), so it gained nothing there.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnclf.errors import RnnclfError
from rnnclf.files import WEIGHTS
from rnnclf.runs.directory import weights_digest

INT8_FILE = "int8.json"
MIN_AGREEMENT = 0.99  # share of validation texts whose label int8 and fp32 agree on
MAX_ACCURACY_DROP = 0.003  # 0.3 points of validation accuracy
QUANTIZED = {nn.LSTM, nn.GRU, nn.Linear}  # torch has no dynamic int8 nn.RNN: an rnn encoder stays fp32


def quantized_layers(model: nn.Module) -> list[str]:
    """The kinds of layer quantize_int8 turns into int8 in this model (an rnn encoder keeps fp32)."""
    return sorted({type(module).__name__ for module in model.modules() if type(module) in QUANTIZED})


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` whose LSTM / GRU / Linear layers compute in int8 (CPU only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's notice that eager quantization moves to torchao
        return torch.ao.quantization.quantize_dynamic(model, QUANTIZED, dtype=torch.qint8, inplace=False)


def require_int8(run_path: Path) -> dict[str, Any]:
    """The recorded check; a run never checked, or trained again since, is refused."""
    path = run_path / INT8_FILE
    if not path.is_file():
        raise RnnclfError(
            f"{run_path}: int8 was not checked for this run; run `rnnclf export {run_path} --quantize int8`"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        digest = record["weights_sha256"]
    except (ValueError, KeyError, TypeError):
        raise RnnclfError(f"{path}: unreadable; run `rnnclf export {run_path} --quantize int8` again") from None
    if digest != weights_digest(run_path):
        raise RnnclfError(
            f"{path}: checked other weights than {run_path / WEIGHTS} (trained again since?); "
            f"run `rnnclf export {run_path} --quantize int8` again"
        )
    return record


def judge(agreement: float, accuracy_fp32: float, accuracy_int8: float) -> str | None:
    """Why int8 is not exact enough, or None when it is."""
    if agreement < MIN_AGREEMENT:
        return (
            f"labels agree with fp32 on {agreement:.2%} of the validation texts (at least {MIN_AGREEMENT:.0%} needed)"
        )
    if accuracy_fp32 - accuracy_int8 > MAX_ACCURACY_DROP + 1e-9:  # exactly 0.3 points passes
        return (
            f"validation accuracy drops {100 * (accuracy_fp32 - accuracy_int8):.2f} points "
            f"({accuracy_fp32:.4f} -> {accuracy_int8:.4f}; at most {100 * MAX_ACCURACY_DROP:.1f} allowed)"
        )
    return None
