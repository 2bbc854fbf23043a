"""Sections reference and naive: training tokens/s of rnnclf's pipeline and the notebook's on the same workload,
steps alternating between them (results keys `training` and `training_quickstart`)."""

from __future__ import annotations

import time
from typing import Any

import torch

from rnnclf.config.schema import Config
from rnnclf.data.corpus import load_corpus
from rnnclf.data.token_cache import prepare

from .common import TARGETS, Plan, describe, num, reference_config, say, synchronize
from .pipelines import Steps, naive_steps, naive_vocabulary, rnnclf_steps


def bench_training(plan: Plan, run_reference: bool, run_naive: bool, config: Config | None = None) -> dict[str, Any]:
    """Sections 1 and 2: the same workload through rnnclf's pipeline and the notebook's, steps alternating.

    The reference workload by default; the quickstart's with `config`."""
    config = config or reference_config(plan.dataset, plan.max_length)
    out: dict[str, Any] = {
        "workload": describe(config),
        "encoder": config.model.encoder,
        "embedding_dim": config.embedding.dim,
        "hidden_size": config.model.hidden_size,
        "directions": 1 + config.model.bidirectional,
        "steps": plan.steps,
        "warmup_steps": plan.warmup,
        "rounds": plan.rounds,
    }
    pipelines = training_pipelines(plan, config, run_reference, run_naive, out)
    warm_up(plan, pipelines)
    for name, total in timed_rounds(plan, pipelines).items():
        out[name] = pipeline_figures(name, total)
    if plan.device.type == "cuda":
        out["gpu_peak_memory_mib"] = torch.cuda.max_memory_allocated(plan.device) / 2**20
        say(f"GPU memory: peak {out['gpu_peak_memory_mib']:,.0f} MiB allocated by both pipelines")
    if "rnnclf" in out and "naive" in out:
        out["ratio"] = out["rnnclf"]["tokens_per_s"] / out["naive"]["tokens_per_s"]
        say(f"rnnclf / naive: {out['ratio']:.2f}x  (target >= {TARGETS['ratio']:.0f}x)")
    return out


def training_pipelines(
    plan: Plan, config: Config, run_reference: bool, run_naive: bool, out: dict[str, Any]
) -> dict[str, Steps]:
    """The pipelines to time, by name, ready to step; the naive vocabulary's build time goes into `out`."""
    pipelines: dict[str, Steps] = {}
    if run_reference:
        start = time.perf_counter()
        prepared = prepare(config)
        say(
            f"rnnclf: prepare() {'from the cache' if prepared.cached else 'tokenized'} in {time.perf_counter() - start:.1f}s"
        )
        pipelines["rnnclf"] = rnnclf_steps(config, prepared, plan.device)
    if run_naive:
        corpus = load_corpus(config.data, config.train.seed)  # the same training split rnnclf trains on
        index = {label: i for i, label in enumerate(corpus.labels)}
        texts = list(corpus.train.texts)  # read from the file into a list, as the notebook holds them
        start = time.perf_counter()
        vocab = naive_vocabulary(texts, config.tokenizer.max_vocab)
        out["naive_vocab_seconds"] = time.perf_counter() - start
        say(f"naive: vocabulary of {len(vocab):,} built in {out['naive_vocab_seconds']:.1f}s (not in the throughput)")
        pipelines["naive"] = naive_steps(config, texts, [index[x] for x in corpus.train.labels], vocab, plan.device)
    return pipelines


def warm_up(plan: Plan, pipelines: dict[str, Steps]) -> None:
    for name, steps in pipelines.items():
        start = time.perf_counter()
        for _ in range(plan.warmup):
            next(steps)
        synchronize(plan.device)
        say(f"{name}: {plan.warmup} warm-up steps in {time.perf_counter() - start:.1f}s")


def timed_rounds(plan: Plan, pipelines: dict[str, Steps]) -> dict[str, dict[str, Any]]:
    """plan.steps steps of each pipeline, in plan.rounds rounds that alternate between them: the totals of each."""
    totals = {
        name: {"seconds": 0.0, "data_seconds": 0.0, "tokens": 0, "positions": 0, "steps": 0} for name in pipelines
    }
    per_round = [plan.steps // plan.rounds + (r < plan.steps % plan.rounds) for r in range(plan.rounds)]
    for round_number, count in enumerate(per_round, start=1):
        shown = []
        for name, steps in pipelines.items():
            total = totals[name]
            start, tokens = time.perf_counter(), 0
            for _ in range(count):
                real, positions, data_seconds = next(steps)
                tokens += real
                total["positions"] += positions
                total["data_seconds"] += data_seconds
            synchronize(plan.device)
            seconds = time.perf_counter() - start
            total["seconds"] += seconds
            total["tokens"] += tokens
            total["steps"] += count
            shown.append(f"{name} {num(tokens / seconds)} tok/s")
        say(f"round {round_number}/{plan.rounds} ({count} steps each): " + ", ".join(shown))
    return totals


def pipeline_figures(name: str, total: dict[str, Any]) -> dict[str, Any]:
    """One pipeline's totals with its throughput and shares, printed."""
    figures = {
        **total,
        "tokens_per_s": total["tokens"] / total["seconds"],
        "seconds_per_step": total["seconds"] / total["steps"],
        "padding_share": 1 - total["tokens"] / total["positions"],
        "data_share": total["data_seconds"] / total["seconds"],
    }
    say(
        f"{name}: {num(figures['tokens_per_s'])} tokens/s ({figures['seconds_per_step']:.3f} s/step, "
        f"{total['tokens'] / total['steps']:,.0f} tokens/step, padding {figures['padding_share']:.1%} of positions, "
        f"batching/tokenizing {figures['data_share']:.1%} of the time)"
    )
    return figures
