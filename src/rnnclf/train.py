"""Training: data -> tokenizer -> model -> epochs -> run directory. Read it top to bottom."""

from __future__ import annotations

import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
import torch
from torch import nn
from tqdm import tqdm

from rnnclf import __version__
from rnnclf.batching import bucket_by_length, iterate, sequential_batches
from rnnclf.config import Config, TrainConfig, config_to_dict
from rnnclf.data.corpus import Corpus, load_corpus
from rnnclf.data.readers import Split
from rnnclf.embeddings import load_pretrained
from rnnclf.errors import RnnclfError
from rnnclf.metrics import classification_report
from rnnclf.model import RNNClassifier, count_parameters
from rnnclf.run import (
    CONFIG,
    ENV,
    FORMAT_VERSION,
    LABELS,
    METRICS,
    METRICS_LOG,
    STATE,
    TOKENIZER,
    WEIGHTS,
    append_line,
    load_tensors,
    save_state,
    save_tensors,
    write_atomic,
    write_json,
    write_yaml,
)
from rnnclf.text import EncodedTexts, encode, fit_tokenizer, vocabulary

Log = Callable[[str], None]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_device(name: str) -> torch.device:
    """auto = CUDA when torch sees one; asking for CUDA without one is a mistake, not a silent fallback."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RnnclfError("train.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device("cuda" if name in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    if device.type != "cuda" or not enabled:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    encoded: EncodedTexts,
    device: torch.device,
    batch_size: int = 256,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Logits for every text, in the original order (batches are sorted by length for little padding)."""
    model.eval()
    out = np.zeros((len(encoded), model.head.out_features), dtype=np.float32)
    for batch in iterate(encoded, sequential_batches(encoded.lengths, batch_size)):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(batch.ids.to(device, non_blocking=True), batch.lengths)
        out[batch.index] = logits.float().cpu().numpy()
    return out


def evaluate(
    model: nn.Module,
    encoded: EncodedTexts,
    targets: np.ndarray,
    labels: list[str],
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    logits = predict_logits(model, encoded, device, dtype=dtype)
    loss = nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets).long()).item()
    report = classification_report(targets, logits.argmax(axis=1), labels)
    report["loss"] = loss
    return report


def class_weight_tensor(setting: str | dict[str, float], labels: list[str], targets: np.ndarray) -> torch.Tensor | None:
    if setting == "none":
        return None
    if setting == "balanced":
        counts = np.bincount(targets, minlength=len(labels)).astype(np.float64)
        return torch.tensor(len(targets) / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32)
    unknown = sorted(set(setting) - set(labels))
    if unknown:
        raise RnnclfError(
            f"train.class_weights: label '{unknown[0]}' is not in the training data (labels: {', '.join(labels)})"
        )
    return torch.tensor([setting.get(label, 1.0) for label in labels], dtype=torch.float32)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> Any:
    if config.scheduler == "plateau":
        mode = "min" if config.metric == "loss" else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5, patience=1)
    if config.scheduler == "none":
        return None
    warmup = int(config.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return (
            max(0.0, 1 - progress)
            if config.scheduler == "linear"
            else 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def better(metric: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return new < best if metric == "loss" else new > best


@dataclass
class Prepared:
    """The corpus turned into what the model eats: fitted tokenizer, token ids, label indices."""

    corpus: Corpus
    tokenizer: tokenizers.Tokenizer
    encoded: dict[str, EncodedTexts]
    targets: dict[str, np.ndarray]


def prepare(config: Config) -> Prepared:
    corpus = load_corpus(config.data, config.train.seed)
    tokenizer = fit_tokenizer(config.tokenizer, corpus.train.texts, config.data.max_length)
    index = {label: i for i, label in enumerate(corpus.labels)}
    splits: dict[str, Split] = {"train": corpus.train, "valid": corpus.valid}
    if corpus.test is not None:
        splits["test"] = corpus.test
    encoded = {name: encode(tokenizer, split.texts) for name, split in splits.items()}
    targets = {
        name: np.array([index[label] for label in split.labels], dtype=np.int64) for name, split in splits.items()
    }
    return Prepared(corpus, tokenizer, encoded, targets)


def check_run_dir(run_dir: Path) -> None:
    """Never overwrite a run silently: an existing, non-empty run directory is an error."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise RnnclfError(
            f"{run_dir}: run directory already exists; choose another with --run-dir or output.run_dir, or delete it"
        )


def environment(device: torch.device, threads: int, config: Config, command: list[str]) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "rnnclf": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": threads,
        "seed": config.train.seed,
        "command": command,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def train(config: Config, command: list[str] | None = None, log: Log = print) -> dict[str, Any]:
    """Train a model as the config says and write its run directory. Returns the metrics summary."""
    tc = config.train
    run_dir = Path(config.output.run_dir)
    check_run_dir(run_dir)
    threads = tc.num_threads or available_cores()
    torch.set_num_threads(threads)
    device = choose_device(tc.device)
    dtype = amp_dtype(device, tc.amp)
    seed_everything(tc.seed)

    data = prepare(config)
    log(
        f"device: {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
        f"{threads} CPU threads, mixed precision: {str(dtype).removeprefix('torch.') if dtype else 'off'}"
    )
    labels = data.corpus.labels
    sizes = {name: len(enc) for name, enc in data.encoded.items()}
    log("data: " + ", ".join(f"{name} {size:,}" for name, size in sizes.items()) + f" texts, {len(labels)} classes")
    vocab = vocabulary(data.tokenizer)
    log(f"vocabulary: {len(vocab):,} tokens ({config.tokenizer.kind}), fitted on the training split")

    model = RNNClassifier(len(vocab), len(labels), config.embedding, config.model)
    summary: dict[str, Any] = {"vocab_size": len(vocab), "sizes": sizes}
    if config.embedding.pretrained:
        counts = np.bincount(data.encoded["train"].ids, minlength=len(vocab))
        vectors = load_pretrained(config.embedding.pretrained, vocab, config.embedding.dim, counts, tc.seed)
        with torch.no_grad():
            model.embedding.weight.copy_(torch.from_numpy(vectors.matrix))
        summary["embedding"] = {
            "pretrained": config.embedding.pretrained,
            "vocab_coverage": vectors.vocab_coverage,
            "token_coverage": vectors.token_coverage,
            "found": vectors.found,
        }
        log(
            f"pretrained vectors: {vectors.found:,} words found, coverage {vectors.vocab_coverage:.1%} of the vocabulary, "
            f"{vectors.token_coverage:.1%} of training tokens"
        )
    model.to(device)
    summary["parameters"] = count_parameters(model)
    log(f"model: {config.model.encoder}, {summary['parameters']['trainable']:,} trainable parameters")

    steps_per_epoch = math.ceil(sizes["train"] / tc.batch_size)
    optimizer = build_optimizer(model, tc)
    scheduler = build_scheduler(optimizer, tc, steps_per_epoch * tc.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weight_tensor(tc.class_weights, labels, data.targets["train"]), label_smoothing=tc.label_smoothing
    ).to(device)

    # everything is validated: only now does the run directory come into being
    run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(run_dir / CONFIG, config_to_dict(config))
    write_json(run_dir / LABELS, labels)
    write_atomic(run_dir / TOKENIZER, data.tokenizer.to_str(pretty=True).encode("utf-8"))
    env = environment(device, threads, config, command or sys.argv)
    write_json(run_dir / ENV, env)
    log(f"run directory: {run_dir}")

    best: float | None = None
    best_epoch, stale, step = 0, 0, 0
    started = time.perf_counter()
    history = []
    for epoch in range(1, tc.epochs + 1):
        model.train()
        batches = bucket_by_length(data.encoded["train"].lengths, tc.batch_size, tc.seed, epoch)
        total_loss, correct, seen, tokens = 0.0, 0, 0, 0
        epoch_start = time.perf_counter()
        bar = tqdm(
            iterate(data.encoded["train"], batches, data.targets["train"]),
            total=len(batches),
            desc=f"epoch {epoch}/{tc.epochs}",
            leave=False,
            disable=None,
            dynamic_ncols=True,
        )
        for batch in bar:
            ids = batch.ids.to(device, non_blocking=True)
            targets = batch.labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = model(ids, batch.lengths)
                loss = loss_fn(logits.float(), targets)
            if not torch.isfinite(loss):
                raise RnnclfError(
                    f"training loss became {loss.item()} at epoch {epoch}, step {step + 1}; lower train.lr or set train.grad_clip (the best weights so far are in {run_dir})"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None and tc.scheduler != "plateau":
                scheduler.step()
            step += 1
            total_loss += loss.item() * len(targets)
            correct += int((logits.argmax(dim=1) == targets).sum())
            seen += len(targets)
            tokens += batch.num_tokens
            bar.set_postfix(
                loss=f"{total_loss / seen:.4f}",
                acc=f"{correct / seen:.3f}",
                tok_s=f"{tokens / (time.perf_counter() - epoch_start):,.0f}",
                refresh=False,
            )
        bar.close()
        train_seconds = time.perf_counter() - epoch_start

        valid = evaluate(model, data.encoded["valid"], data.targets["valid"], labels, device, dtype)
        score = valid[tc.metric]
        if scheduler is not None and tc.scheduler == "plateau":
            scheduler.step(score)
        improved = better(tc.metric, score, best)
        if improved:
            best, best_epoch, stale = score, epoch, 0
            save_tensors(run_dir / WEIGHTS, model.state_dict(), metadata={"epoch": str(epoch)})
        else:
            stale += 1
        record = {
            "epoch": epoch,
            "step": step,
            "train_loss": total_loss / seen,
            "train_accuracy": correct / seen,
            "valid_loss": valid["loss"],
            "valid_accuracy": valid["accuracy"],
            "valid_macro_f1": valid["macro_f1"],
            "lr": optimizer.param_groups[0]["lr"],
            "tokens_per_s": tokens / train_seconds,
            "epoch_seconds": time.perf_counter() - epoch_start,
        }
        history.append(record)
        append_line(run_dir / METRICS_LOG, record)
        save_state(
            run_dir / STATE, training_state(model, optimizer, scheduler, scaler, epoch, step, best, best_epoch, stale)
        )
        log(
            f"epoch {epoch}/{tc.epochs}  train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}  "
            f"valid loss {valid['loss']:.4f} acc {valid['accuracy']:.4f} macro F1 {valid['macro_f1']:.4f}  "
            f"{record['tokens_per_s']:,.0f} tok/s  {record['epoch_seconds']:.1f}s{'  *best' if improved else ''}"
        )
        if tc.early_stopping is not None and stale >= tc.early_stopping:
            log(f"early stopping: no better valid {tc.metric} for {stale} epochs")
            break

    train_time = time.perf_counter() - started
    model.load_state_dict(load_tensors(run_dir / WEIGHTS))
    best_valid = evaluate(model, data.encoded["valid"], data.targets["valid"], labels, device, dtype)
    test = None
    if "test" in data.encoded:
        test = evaluate(model, data.encoded["test"], data.targets["test"], labels, device, dtype)
        log(
            f"test (best epoch {best_epoch}): accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}, weighted F1 {test['weighted_f1']:.4f}"
        )
    summary.update(
        {
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "metric": tc.metric,
            "train_seconds": train_time,
            "valid": best_valid,
            "test": test,
            "tokens_per_s": sum(r["tokens_per_s"] for r in history) / len(history),
        }
    )
    write_json(run_dir / METRICS, summary)
    env["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(run_dir / ENV, env)
    return summary


def training_state(model, optimizer, scheduler, scaler, epoch, step, best, best_epoch, stale) -> dict[str, Any]:
    """The last training state: what a resumed run needs to continue where this one stopped."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "epoch": epoch,
        "step": step,
        "best": best,
        "best_epoch": best_epoch,
        "stale": stale,
        "torch_rng": torch.get_rng_state(),
    }
    return state
