"""Logits of a model on encoded texts, and their metrics: used by train, eval, predict, export and serve.

No training code here, and no change to process-wide settings: torch's thread count is set once per
process by the command (rnnclf.engine.device.use_cpu_threads).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnclf import calibration
from rnnclf.batching import Batch, iterate, sequential_batches
from rnnclf.engine.device import flush_denormals
from rnnclf.metrics import classification_report
from rnnclf.multilabel import multilabel_report
from rnnclf.tokenizer import EncodedTexts

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def worker_pool(workers: int) -> ThreadPoolExecutor:
    """One pool of `workers` threads per process, made on first use and kept."""
    with _pools_lock:
        if workers not in _pools:
            # each worker flushes subnormal floats to zero in its own thread, as use_cpu_threads does
            _pools[workers] = ThreadPoolExecutor(workers, "rnnclf-predict", initializer=flush_denormals)
        return _pools[workers]


def predict_logits(
    model: nn.Module,
    encoded: EncodedTexts,
    device: torch.device,
    batch_size: int = 64,
    dtype: torch.dtype | None = None,
    workers: int = 1,
) -> np.ndarray:
    """Logits for every text, in the original order (batches are sorted by length for little padding).

    With workers > 1 on the CPU, that many threads each take whole batches. Predicting with one torch thread
    per worker (`use_cpu_threads(1)`) is the fastest use of several cores: a recurrent step is a small product
    that several cores share poorly (scripts/bench.py).
    """
    model.eval()
    out = np.zeros((len(encoded), model.head.out_features), dtype=np.float32)

    def run(batch: Batch) -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(batch.ids.to(device, non_blocking=True), batch.lengths)
        out[batch.index] = logits.float().cpu().numpy()

    batches = iterate(encoded, sequential_batches(encoded.lengths, batch_size))
    if device.type != "cpu" or workers <= 1 or len(encoded) <= batch_size:
        for batch in batches:
            run(batch)
    else:
        list(worker_pool(workers).map(run, batches))
    return out


class MultiLabelLoss(nn.Module):
    """Binary cross-entropy per label on sigmoid outputs; `pos_weight` weighs each label's positives, and label
    smoothing moves every 0 / 1 target ε/2 toward 1/2."""

    def __init__(self, pos_weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        smoothed = targets * (1 - self.label_smoothing) + self.label_smoothing / 2
        return nn.functional.binary_cross_entropy_with_logits(logits, smoothed, pos_weight=self.pos_weight)


def loss_function(multi_label: bool, weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> nn.Module:
    """The training loss: cross-entropy over classes, or for multi-label binary cross-entropy per label (with
    class weights as positive weights)."""
    if multi_label:
        return MultiLabelLoss(weight, label_smoothing)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)


def objective(
    logits: np.ndarray, targets: np.ndarray, weight: torch.Tensor | None = None, label_smoothing: float = 0.0
) -> float:
    """The mean loss of logits against targets (class indices, or 0 / 1 rows for multi-label); with class weights
    and label smoothing it is the training objective, without them the plain (binary) cross-entropy."""
    multi_label = targets.ndim == 2
    loss = loss_function(multi_label, weight.cpu() if weight is not None else None, label_smoothing)
    target = torch.from_numpy(targets).float() if multi_label else torch.from_numpy(targets).long()
    return loss(torch.from_numpy(logits), target).item()


def probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Softmax over classes, or a sigmoid per label (float32)."""
    return calibration.probabilities(logits, multi_label).astype(np.float32)


def scores(
    logits: np.ndarray, targets: np.ndarray, labels: list[str], thresholds: np.ndarray | None = None
) -> dict[str, Any]:
    """The classification report of logits against targets, with the plain (binary) cross-entropy as `loss`.
    Multi-label targets (0 / 1 rows) get the multi-label report at `thresholds` (default 0.5 for every label)."""
    if targets.ndim == 2:
        cut = np.full(len(labels), 0.5) if thresholds is None else thresholds
        report = multilabel_report(probabilities(logits, True), targets, labels, cut)
    else:
        report = classification_report(targets, logits.argmax(axis=1), labels)
    report["loss"] = objective(logits, targets)
    return report
