"""Logits of a model on encoded texts, batched by length, on one or several CPU threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from rnnclf.data.batching import Batch, iterate, sequential_batches
from rnnclf.data.tokenizer import EncodedTexts
from rnnclf.device.threads import flush_denormals

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
    vectors: np.ndarray | None = None,
) -> np.ndarray:
    """Logits for every text, in the original order (batches are sorted by length for little padding).

    With workers > 1 on the CPU, that many threads each take whole batches. Predicting with one torch thread
    per worker (`use_cpu_threads(1)`) is the fastest use of several cores: a recurrent step is a small product
    that several cores share poorly (python -m scripts.bench). `vectors` (texts, features), when given, is filled
    with the text vectors the output layer reads.
    """
    model.eval()
    out = np.zeros((len(encoded), model.num_classes), dtype=np.float32)

    def run(batch: Batch) -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            inputs = (batch.ids.to(device, non_blocking=True), batch.lengths, *batch.wide_inputs(device))
            if vectors is None:
                logits = model(*inputs)
            else:
                logits, pooled = model.logits_and_vectors(*inputs)
                vectors[batch.index] = pooled.float().cpu().numpy()
        out[batch.index] = logits.float().cpu().numpy()

    batches = iterate(encoded, sequential_batches(encoded.lengths, batch_size, getattr(model, "chunk", None)))
    if device.type != "cpu" or workers <= 1 or len(encoded) <= batch_size:
        for batch in batches:
            run(batch)
    else:
        list(worker_pool(workers).map(run, batches))
    return out
