"""Training: data -> tokenizer -> model -> epochs -> run directory. Read it top to bottom."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
import torch
from torch import nn
from tqdm import tqdm

from rnnclf import __version__, distributed
from rnnclf.batching import Batch, bucket_by_length, iterate, sequential_batches
from rnnclf.config import Config, TrainConfig, config_to_dict
from rnnclf.distributed import Group, LostPeers
from rnnclf.embeddings import load_pretrained
from rnnclf.errors import RnnclfError
from rnnclf.files import (
    CONFIG,
    ENV,
    LABELS,
    METRICS,
    METRICS_LOG,
    STATE,
    TOKENIZER,
    WEIGHTS,
    append_line,
    write_atomic,
    write_json,
    write_yaml,
)
from rnnclf.metrics import classification_report
from rnnclf.model import RNNClassifier, count_parameters
from rnnclf.plots import log_epoch, log_step, require_tensorboard, save_curves, tensorboard
from rnnclf.run import FORMAT_VERSION, STATE_FILE, load_state, load_tensors, save_state, save_tensors
from rnnclf.text import EncodedTexts, vocabulary
from rnnclf.tokens import prepare

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


def predict_logits(
    model: nn.Module,
    encoded: EncodedTexts,
    device: torch.device,
    batch_size: int = 64,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Logits for every text, in the original order (batches are sorted by length for little padding).

    On the CPU each thread takes whole batches, one core each: a recurrent step is a small product that
    several cores share poorly, so this is faster than all threads on one batch (scripts/bench.py).
    """
    model.eval()
    out = np.zeros((len(encoded), model.head.out_features), dtype=np.float32)

    def run(batch: Batch) -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(batch.ids.to(device, non_blocking=True), batch.lengths)
        out[batch.index] = logits.float().cpu().numpy()

    batches = iterate(encoded, sequential_batches(encoded.lengths, batch_size))
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1 or len(encoded) <= batch_size:
        for batch in batches:
            run(batch)
        return out
    with ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        list(pool.map(run, batches))
    torch.set_num_threads(threads)  # the workers' setting is also the default for threads made later
    return out


def evaluate(
    model: nn.Module,
    encoded: EncodedTexts,
    targets: np.ndarray,
    labels: list[str],
    device: torch.device,
    dtype: torch.dtype | None = None,
    group: Group | None = None,
) -> dict[str, Any]:
    """Metrics of the model on labelled texts. With several processes each predicts a share and all get the lot."""
    if group is None or not group.active:
        logits = predict_logits(model, encoded, device, dtype=dtype)
    else:
        share = np.arange(len(encoded))[group.rank :: group.world]
        parts = distributed.gather((share, predict_logits(model, encoded.take(share), device, dtype=dtype)), group)
        logits = np.zeros((len(encoded), model.head.out_features), dtype=np.float32)
        for index, part in parts:
            logits[index] = part
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


def check_run_dir(run_dir: Path) -> None:
    """Never overwrite a run silently: an existing, non-empty run directory is an error."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise RnnclfError(
            f"{run_dir}: run directory already exists; choose another with --run-dir or output.run_dir, or delete it"
        )


def environment(device: torch.device, threads: int, config: Config, command: list[str], group: Group) -> dict[str, Any]:
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
        "processes": group.world,
        "seed": config.train.seed,
        "command": command,
        "started": now(),
    }


class TrainingStopped(Exception):
    """Training stopped on a signal after saving its state; `code` is the exit code (128 + signal)."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.code = 128 + signum


@dataclass
class Progress:
    """Where training is: everything besides the tensors that a resumed run needs to continue exactly."""

    epoch: int = 1  # the epoch in progress
    batch: int = 0  # batches of it done
    step: int = 0
    best: float | None = None
    best_epoch: int = 0
    stale: int = 0
    total_loss: float = 0.0  # this epoch's running sums
    correct: int = 0
    seen: int = 0
    tokens: int = 0
    seconds: float = 0.0  # training time so far, over all sessions
    summary: dict[str, Any] = field(default_factory=dict)


def train(config: Config, command: list[str] | None = None, log: Log = print) -> dict[str, Any]:
    """Train a model as the config says and write a new run directory. Returns the metrics summary."""
    run_dir = Path(config.output.run_dir)
    if distributed.from_env().main:  # the other processes of a distributed run find rank 0's directory
        check_run_dir(run_dir)
    return _fit(config, run_dir, None, command or sys.argv, log)


def resume(run_dir: Path, command: list[str] | None = None, log: Log = print) -> dict[str, Any]:
    """Continue a run from its last saved state (the run's own config; same data)."""
    from rnnclf.run import load_run

    if not run_dir.is_dir():
        raise RnnclfError(f"{run_dir}: run directory not found")
    if not (run_dir / STATE / STATE_FILE).exists():
        raise RnnclfError(f"{run_dir}: no saved training state to resume from ({STATE}/{STATE_FILE})")
    run = load_run(run_dir, weights=False)
    if (run_dir / METRICS).exists():  # written last, when training and the final evaluation are done
        raise RnnclfError(
            f"{run_dir}: this run has finished; nothing to resume (to train longer, start a new run with more "
            "train.epochs)"
        )
    return _fit(run.config, run_dir, run, command or sys.argv, log)


def _fit(config: Config, run_dir: Path, previous: Any, command: list[str], log: Log) -> dict[str, Any]:
    """Set up this process (and the process group when torchrun started several), then train."""
    if config.output.tensorboard:
        require_tensorboard()  # before any work: a missing package is a mistake in the config
    group = distributed.from_env()
    device = distributed.start(group, choose_device(config.train.device))
    try:
        return _train(config, run_dir, previous, command, log if group.main else lambda message: None, group, device)
    except Exception as exc:
        if group.active and distributed.is_lost_peer(exc):
            if not group.main:  # rank 0 reports what went wrong: let torchrun see the process that failed first
                time.sleep(distributed.LOST_PEER_GRACE)
            saved = (
                f"continue from the last saved state with: rnnclf train --resume {run_dir} --nproc {group.world}"
                if (run_dir / STATE / STATE_FILE).exists()
                else "no state was saved yet"
            )
            raise LostPeers(
                f"rank {group.rank}: lost the other training processes ({distributed.first_line(exc)}); {saved}"
            ) from None
        raise
    finally:
        distributed.stop(group)


def _train(
    config: Config, run_dir: Path, previous: Any, command: list[str], log: Log, group: Group, device: torch.device
) -> dict[str, Any]:
    tc = config.train
    threads = tc.num_threads or max(1, available_cores() // group.local_world)
    torch.set_num_threads(threads)
    dtype = amp_dtype(device, tc.amp)
    seed_everything(tc.seed)

    started = time.perf_counter()
    if not group.main:  # rank 0 tokenizes and fills the token cache; the others then read it
        distributed.barrier(group)
    data = prepare(config, previous.tokenizer if previous else None)
    if group.main:
        distributed.barrier(group)
    log(
        f"tokens: {'from the cache' if data.cached else 'tokenized and cached'} in {time.perf_counter() - started:.1f}s"
    )
    log(
        f"device: {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
        f"{threads} CPU thread{'s' if threads > 1 else ''}, mixed precision: {str(dtype).removeprefix('torch.') if dtype else 'off'}"
        + (f", {group.world} processes ({'nccl' if device.type == 'cuda' else 'gloo'})" if group.active else "")
    )
    labels = data.labels
    if previous and previous.labels != labels:
        raise RnnclfError(f"{run_dir}: the data's labels changed since this run started; cannot resume")
    sizes = {name: len(enc) for name, enc in data.encoded.items()}
    log("data: " + ", ".join(f"{name} {size:,}" for name, size in sizes.items()) + f" texts, {len(labels)} classes")
    vocab = vocabulary(data.tokenizer)
    log(f"vocabulary: {len(vocab):,} tokens ({config.tokenizer.kind}), fitted on the training split")

    model = RNNClassifier(len(vocab), len(labels), config.embedding, config.model)
    progress = Progress(summary={"vocab_size": len(vocab), "sizes": sizes})
    if config.embedding.pretrained and not previous:
        counts = np.bincount(data.encoded["train"].ids, minlength=len(vocab))
        vectors = load_pretrained(config.embedding.pretrained, vocab, config.embedding.dim, counts, tc.seed)
        with torch.no_grad():
            model.embedding.weight.copy_(torch.from_numpy(vectors.matrix))
        progress.summary["embedding"] = {
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
    # DDP copies rank 0's weights to all; each rank then draws its own dropout masks
    net = (
        nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        if group.active
        else model
    )
    if group.active:
        torch.manual_seed(tc.seed + group.rank)
    progress.summary["parameters"] = count_parameters(model)
    log(f"model: {config.model.encoder}, {progress.summary['parameters']['trainable']:,} trainable parameters")

    steps_per_epoch = distributed.steps_per_epoch(math.ceil(sizes["train"] / tc.batch_size), group)
    optimizer = build_optimizer(model, tc)
    scheduler = build_scheduler(optimizer, tc, steps_per_epoch * tc.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weight_tensor(tc.class_weights, labels, data.targets["train"]), label_smoothing=tc.label_smoothing
    ).to(device)

    if previous:
        progress = restore_state(load_state(run_dir / STATE), model, optimizer, scheduler, scaler, device, group)
        env = json.loads((run_dir / ENV).read_text(encoding="utf-8"))
        # an epoch's line may have been written just before the kill that its state missed
        lines = (
            (run_dir / METRICS_LOG).read_text(encoding="utf-8").splitlines() if (run_dir / METRICS_LOG).exists() else []
        )
        kept = [line for line in lines if json.loads(line)["epoch"] < progress.epoch]
        if group.main:
            write_atomic(run_dir / METRICS_LOG, "".join(line + "\n" for line in kept).encode("utf-8"))
        env.setdefault("resumed", []).append(
            {
                "at": now(),
                "epoch": progress.epoch,
                "batch": progress.batch,
                "command": command,
                "processes": group.world,
            }
        )
        log(f"resuming {run_dir} at epoch {progress.epoch}, batch {progress.batch} (step {progress.step})")
    else:
        env = environment(device, threads, config, command, group)
        if group.main:  # everything is validated: only now does the run directory come into being
            run_dir.mkdir(parents=True, exist_ok=True)
            write_yaml(run_dir / CONFIG, config_to_dict(config))
            write_json(run_dir / LABELS, labels)
            write_atomic(run_dir / TOKENIZER, data.tokenizer.to_str(pretty=True).encode("utf-8"))
        log(f"run directory: {run_dir}")
    if group.main:
        write_json(run_dir / ENV, env)

    def save(p: Progress) -> None:
        # every rank's random state and running sums, so that a resumed distributed run goes on as each rank was
        ranks = distributed.gather(rank_state(p), group) if group.active else None
        if group.main:
            save_state(run_dir / STATE, training_state(model, optimizer, scheduler, scaler, p) | {"ranks": ranks})

    plotting = True  # until matplotlib turns out to be missing (said once)
    resumed_at = progress.step if previous else None
    resume_option = f" --nproc {group.world}" if group.active else ""
    with (
        stop_on_signals(escalate=not group.active) as stop,
        tensorboard(config.output.tensorboard and group.main, run_dir, resumed_at) as board,
    ):
        while progress.epoch <= tc.epochs:
            epoch = progress.epoch
            model.train()
            batches = distributed.shard(
                bucket_by_length(data.encoded["train"].lengths, tc.batch_size, tc.seed, epoch), group
            )
            # session: since the last save (adds up to train_seconds); epoch_start: this session's part of the epoch
            session_start = epoch_start = time.perf_counter()
            session_tokens = 0
            bar = tqdm(
                iterate(data.encoded["train"], batches[progress.batch :], data.targets["train"]),
                total=len(batches),
                initial=progress.batch,
                desc=f"epoch {epoch}/{tc.epochs}",
                leave=False,
                disable=None if group.main else True,
                dynamic_ncols=True,
            )
            for batch in bar:
                if device.type == "cuda":  # page-locked memory lets the copy overlap the previous step
                    batch.ids, batch.labels = batch.ids.pin_memory(), batch.labels.pin_memory()
                ids = batch.ids.to(device, non_blocking=True)
                targets = batch.labels.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    logits = net(ids, batch.lengths)
                    loss = loss_fn(logits.float(), targets)
                # the loss and the count of right answers in one read: one wait for the device per step, not three
                loss_value, correct = torch.stack(
                    [loss.detach(), (logits.argmax(dim=1) == targets).sum().to(loss.dtype)]
                ).tolist()
                if not math.isfinite(loss_value):
                    kept = (
                        "the last saved state and best weights are kept"
                        if (run_dir / STATE).exists()
                        else "nothing was saved yet"
                    )
                    raise RnnclfError(
                        f"training loss became {loss_value} at epoch {epoch}, step {progress.step + 1}; "
                        f"lower train.lr or set train.grad_clip ({kept} in {run_dir})"
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
                progress.step += 1
                progress.batch += 1
                progress.total_loss += loss_value * len(targets)
                progress.correct += int(correct)
                progress.seen += len(targets)
                progress.tokens += batch.num_tokens
                session_tokens += batch.num_tokens
                if board is not None:
                    log_step(board, progress.step, loss_value, optimizer.param_groups[0]["lr"])
                bar.set_postfix(
                    loss=f"{progress.total_loss / progress.seen:.4f}",
                    acc=f"{progress.correct / progress.seen:.3f}",
                    tok_s=f"{session_tokens / (time.perf_counter() - epoch_start):,.0f}",
                    refresh=False,
                )
                halt = distributed.any_rank(stop.signum is not None, group, device)  # all ranks stop together
                if halt or (tc.save_every and progress.step % tc.save_every == 0):
                    progress.seconds += time.perf_counter() - session_start
                    session_start = time.perf_counter()
                    save(progress)
                    if halt:
                        bar.close()
                        raise TrainingStopped(
                            stop.signum or signal.SIGTERM,
                            f"stopped at epoch {epoch}, step {progress.step}; state saved. "
                            f"Continue with: rnnclf train --resume {run_dir}{resume_option}",
                        )
            bar.close()
            progress.seconds += time.perf_counter() - session_start
            epoch_seconds = time.perf_counter() - epoch_start

            valid = evaluate(model, data.encoded["valid"], data.targets["valid"], labels, device, dtype, group)
            score = valid[tc.metric]
            if scheduler is not None and tc.scheduler == "plateau":
                scheduler.step(score)
            improved = better(tc.metric, score, progress.best)
            if improved:
                progress.best, progress.best_epoch, progress.stale = score, epoch, 0
                if group.main:
                    save_tensors(run_dir / WEIGHTS, model.state_dict(), metadata={"epoch": str(epoch)})
            else:
                progress.stale += 1
            total_loss, correct, seen, tokens = distributed.sum_all(
                [progress.total_loss, progress.correct, progress.seen, session_tokens], group, device
            )
            record = {
                "epoch": epoch,
                "step": progress.step,
                "train_loss": total_loss / seen,
                "train_accuracy": correct / seen,
                "valid_loss": valid["loss"],
                "valid_accuracy": valid["accuracy"],
                "valid_macro_f1": valid["macro_f1"],
                "lr": optimizer.param_groups[0]["lr"],
                "tokens_per_s": tokens / max(epoch_seconds, 1e-9),  # all processes together
                "epoch_seconds": epoch_seconds,
            }
            if group.main:
                append_line(run_dir / METRICS_LOG, record)
            if board is not None:
                log_epoch(board, record)
            if plotting and group.main:
                plotting = save_curves(run_dir, tc.metric, log)
            log(
                f"epoch {epoch}/{tc.epochs}  train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}  "
                f"valid loss {valid['loss']:.4f} acc {valid['accuracy']:.4f} macro F1 {valid['macro_f1']:.4f}  "
                f"{record['tokens_per_s']:,.0f} tok/s  {epoch_seconds:.1f}s{'  *best' if improved else ''}"
            )
            stopping = tc.early_stopping is not None and progress.stale >= tc.early_stopping
            progress.epoch = tc.epochs + 1 if stopping else epoch + 1
            progress.batch, progress.total_loss, progress.correct, progress.seen, progress.tokens = 0, 0.0, 0, 0, 0
            save(progress)
            if stopping:
                log(f"early stopping: no better valid {tc.metric} for {progress.stale} epochs")

    model.load_state_dict(load_tensors(run_dir / WEIGHTS))  # the best weights, exactly as saved
    best_valid = evaluate(model, data.encoded["valid"], data.targets["valid"], labels, device, dtype, group)
    test = None
    if "test" in data.encoded:
        test = evaluate(model, data.encoded["test"], data.targets["test"], labels, device, dtype, group)
        log(
            f"test (best epoch {progress.best_epoch}): accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}, "
            f"weighted F1 {test['weighted_f1']:.4f}"
        )
    distributed.barrier(group)  # rank 0 has written the last epoch's line
    history = [json.loads(line) for line in (run_dir / METRICS_LOG).read_text(encoding="utf-8").splitlines()]
    summary = {
        **progress.summary,
        "best_epoch": progress.best_epoch,
        "epochs_run": len(history),
        "metric": tc.metric,
        "train_seconds": progress.seconds,
        "tokens_per_s": sum(r["tokens_per_s"] for r in history) / len(history),
        "valid": best_valid,
        "test": test,
    }
    if group.main:
        write_json(run_dir / METRICS, summary)
        env["finished"] = now()
        write_json(run_dir / ENV, env)
    return summary


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _StopFlag:
    signum: int | None = None


@contextmanager
def stop_on_signals(escalate: bool = True) -> Iterator[_StopFlag]:
    """Ctrl-C and SIGTERM ask training to stop at the next step, after saving its state.

    A second one stops at once, unless `escalate` is off: under torchrun each process gets the terminal's
    Ctrl-C and torchrun's copy of it, and must still save (torchrun kills it after 30 s if it hangs)."""
    flag = _StopFlag()

    def handler(signum: int, frame: Any) -> None:
        if flag.signum is not None and escalate:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        flag.signum = signum

    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def training_state(model, optimizer, scheduler, scaler, progress: Progress) -> dict[str, Any]:
    """The last training state: weights, optimizer, schedule, scaler, RNG, and where training is."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "progress": asdict(progress),
    }


def rank_state(progress: Progress) -> dict[str, Any]:
    """What differs between the processes of a distributed run: random state and this epoch's running sums."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
        "sums": [progress.total_loss, progress.correct, progress.seen, progress.tokens],
    }


def restore_state(
    state: dict[str, Any], model, optimizer, scheduler, scaler, device: torch.device, group: Group | None = None
) -> Progress:
    """Put a saved state back; a distributed run continues mid-epoch only with as many processes as it had."""
    group = group or Group()
    ranks = state.get("ranks") or [None]
    progress = Progress(**state["progress"])
    if progress.batch and len(ranks) != group.world:
        raise RnnclfError(
            f"the saved state is from the middle of an epoch of a run with {len(ranks)} process(es); "
            f"resume it with --nproc {len(ranks)}"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler.is_enabled() and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    own = ranks[group.rank] if group.rank < len(ranks) else None
    if own is not None:
        torch.set_rng_state(own["torch_rng"])
        if own["cuda_rng"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(own["cuda_rng"], device)
        total_loss, correct, seen, tokens = own["sums"]
        progress.total_loss, progress.correct, progress.seen, progress.tokens = (
            total_loss,
            int(correct),
            int(seen),
            int(tokens),
        )
    elif group.active:  # at an epoch's start with another number of processes: a fresh stream per rank
        torch.manual_seed(1_000_003 * progress.step + group.rank)
    return progress
