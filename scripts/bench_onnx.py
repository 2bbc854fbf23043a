"""Prediction throughput of ONNX Runtime (RUN/model.onnx) next to PyTorch, on the same texts, in one run.

    .venv/bin/python scripts/bench_onnx.py [RUN] [--corpus r8] [--rounds 3]

RUN defaults to runs/quickstart; export it first (`rnnclf export RUN --format onnx`). The texts are the
corpus's test split. Both backends predict all of them once to warm up, then alternately --rounds times;
the best round of each is reported (texts/s), with the ratio and the largest probability difference.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import onnxruntime
import torch

from rnnclf.data.builtin import fetch
from rnnclf.data.readers import read_split
from rnnclf.device.cores import available_cores
from rnnclf.device.threads import use_cpu_threads
from rnnclf.inference.onnx import OnnxPredictor
from rnnclf.inference.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", default="runs/quickstart")
    parser.add_argument("--corpus", default="r8")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    texts = read_split(fetch(args.corpus)["test"]).texts
    use_cpu_threads(1)  # as `rnnclf predict`: one torch thread per worker, a worker per core
    torch_predictor = Predictor.load(args.run, "cpu", workers=available_cores())
    backends = {"torch": torch_predictor, "onnxruntime": OnnxPredictor.load(args.run)}
    print(
        f"{len(texts)} {args.corpus} test texts, {args.run}; torch {torch.__version__} ({available_cores()} threads "
        f"x 1 core each), onnxruntime {onnxruntime.__version__} ({available_cores()} threads x 1 core each); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    probabilities = {name: backend.predict_proba(texts) for name, backend in backends.items()}  # warm-up
    best = dict.fromkeys(backends, float("inf"))
    for _ in range(args.rounds):
        for name, backend in backends.items():
            start = time.perf_counter()
            backend.predict_proba(texts)
            best[name] = min(best[name], time.perf_counter() - start)
    for name, seconds in best.items():
        print(f"{name:<12} {len(texts) / seconds:8.0f} texts/s  ({seconds:.2f}s, best of {args.rounds})")
    print(f"onnxruntime / torch: {best['torch'] / best['onnxruntime']:.2f}x")
    difference = np.abs(probabilities["torch"] - probabilities["onnxruntime"]).max()
    print(f"largest probability difference: {difference:.1e}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
