"""rnnclf train: one process, or several through torchrun (--nproc)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnclf.cli.app import Device, Format, app, app_state, log, output_format, rank_zero
from rnnclf.errors import RnnclfError


@app.command()
def train(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: --set train.lr=0.001 (repeatable).")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Write the run here (overrides output.run_dir).")
    ] = None,
    device: Annotated[
        Device | None, typer.Option("--device", help="auto, cpu or cuda (overrides train.device).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue this run directory from its last saved state.")
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option("--init", help="Update a finished run: start from its weights, words and labels (model.init)."),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format", help="How to print the summary: table or json (default: table on a terminal, json otherwise)."
        ),
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            help="Train in N processes with DistributedDataParallel (starts torchrun on this machine).",
        ),
    ] = 1,
) -> None:
    """Train a classifier and write a run directory, or continue one with --resume.

    Example: rnnclf train --config configs/quickstart.yaml --set train.epochs=3

    An update with new texts: rnnclf train --config FILE --init runs/old --set data.rehearsal=1000

    Several processes: rnnclf train --config FILE --nproc 2 (or torchrun --nproc-per-node 2 -m rnnclf train --config FILE)
    """
    given = [*(overrides or []), *([f"model.init={init}"] if init is not None else [])]
    options = (config, given, run_dir, device, resume)
    summary = _session(options, lambda extra: _train(config, extra, nproc), lambda: _resume(resume, nproc), "a run")
    if summary is not None and rank_zero():  # rank 0 of a distributed run reports; a complete run said so
        _print_summary(summary, fmt)


def _session(options: tuple, start: Any, again: Any, what: str) -> dict[str, Any] | None:
    """A training session of train or pretrain: a new run from --config (the options turned into overrides), or
    --resume; a stop on a signal exits with 128 + its number after one line."""
    config, overrides, run_dir, device, resume = options
    _wait_policy()
    from rnnclf.training.session import TrainingStopped

    try:
        if resume is not None:
            if config is not None or overrides or run_dir is not None or device is not None:
                raise RnnclfError(
                    "--resume continues a run with its own config; do not combine it with --config, --set, --init, "
                    "--run-dir or --device"
                )
            return again()
        if config is None:
            raise RnnclfError(f"give --config FILE (or --resume RUN to continue {what})")
        extra = list(overrides or [])
        extra += [f"output.run_dir={run_dir}"] if run_dir is not None else []
        extra += [f"train.device={device.value}"] if device is not None else []
        return start(extra)
    except TrainingStopped as stop:
        if rank_zero():
            log(f"rnnclf: {stop}")
        raise typer.Exit(stop.code) from None


def _wait_policy() -> None:
    """Before torch loads OpenMP (which reads its wait policy once): passive waiting on a busy machine. The
    training log says so once the config and data are known to be good (a mistake stays one line)."""
    if "torch" not in sys.modules and "WORLD_SIZE" not in os.environ:  # --nproc's processes: their launcher chose
        from rnnclf.device.cores import prefer_passive_waiting

        prefer_passive_waiting()


def _resume(run: Path, nproc: int) -> dict[str, Any] | None:
    from rnnclf.recipes.classify import resume

    if nproc > 1 and "WORLD_SIZE" not in os.environ and not _complete(run):
        from rnnclf.runs.directory import load_run

        _check_gpus(nproc, load_run(run, weights=False).config.train.device)
        raise typer.Exit(_launch(nproc, run, resume=run))
    return resume(run, command=sys.argv, log=log)


def _complete(run: Path) -> bool:
    """A finished run: resume says so itself (exit 0), with no processes to start."""
    from rnnclf.training.session import is_complete

    return run.is_dir() and is_complete(run)


def _train(config: Path, overrides: list[str], nproc: int) -> dict[str, Any]:
    from rnnclf.config.loading import load_config
    from rnnclf.config.rules import train_warnings
    from rnnclf.recipes.classify import train
    from rnnclf.training.distributed import LAUNCHED
    from rnnclf.training.session import check_run_dir

    resolved = load_config(config, overrides)
    if rank_zero() and not os.environ.get(LAUNCHED):  # --nproc's processes: their launcher said it already
        for warning in train_warnings(resolved):
            log(f"rnnclf: warning: {config}: {warning}")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        check_run_dir(Path(resolved.output.run_dir))  # one clear line here, not one per process
        _check_gpus(nproc, resolved.train.device)
        raise typer.Exit(_launch(nproc, Path(resolved.output.run_dir), config=config, overrides=overrides))
    return train(resolved, command=sys.argv, log=log)


SCORES = ("accuracy", "macro_f1", "weighted_f1", "loss")


def _print_summary(summary: dict[str, Any], fmt: Format | None) -> None:
    best = summary["test"] or summary["valid"]
    multi_label = summary.get("multi_label", False)
    if output_format(fmt) is Format.json:
        scores = ("micro_f1", "macro_f1", "samples_f1", "accuracy", "loss", "at_0.5") if multi_label else SCORES
        brief = {key: summary[key] for key in ("best_epoch", "epochs_run", "metric", "train_seconds", "tokens_per_s")}
        for split in ("valid", "test"):
            brief[split] = {key: summary[split][key] for key in scores} if summary[split] else None
        typer.echo(json.dumps(brief | ({"multi_label": True} if multi_label else {})))
        return
    first = f"micro F1 {best['micro_f1']:.4f}" if multi_label else f"accuracy {best['accuracy']:.4f}"
    typer.echo(
        f"done: best epoch {summary['best_epoch']}, {'test' if summary['test'] else 'valid'} {first}, "
        f"macro F1 {best['macro_f1']:.4f}, {summary['train_seconds']:.1f}s"
    )


@app.command()
def pretrain(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: --set train.epochs=3 (repeatable).")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Write the run here (overrides output.run_dir).")
    ] = None,
    device: Annotated[
        Device | None, typer.Option("--device", help="auto, cpu or cuda (overrides train.device).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue this run directory from its last saved state.")
    ] = None,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="Summary as table or json (default: table on a terminal).")
    ] = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Train in N processes (starts torchrun).")] = 1,
) -> None:
    """Pretrain a recurrent language model on the training split's texts (and data.unlabelled) for model.init.

    The config is the classifier's (same data, tokenizer, embedding and encoder), with train.* for the language
    model's training and pretrain.* for its windows and output layer.

    Example: rnnclf pretrain --config configs/r8-lm.yaml, then rnnclf train --config configs/r8-pretrained.yaml
    """
    options = (config, overrides, run_dir, device, resume)
    start = lambda extra: _pretrain(config, extra, nproc, None)  # noqa: E731
    summary = _session(options, start, lambda: _pretrain(None, [], nproc, resume), "a language model")
    if summary is not None and rank_zero():
        brief = {key: summary[key] for key in ("best_epoch", "epochs_run", "valid_perplexity", "train_seconds")}
        if output_format(fmt) is Format.json:
            typer.echo(json.dumps(brief))
        else:
            typer.echo(
                f"done: best epoch {brief['best_epoch']}, valid perplexity {brief['valid_perplexity']:.2f}, "
                f"{brief['train_seconds']:.1f}s"
            )


def _pretrain(config: Path | None, overrides: list[str], nproc: int, resume: Path | None) -> dict[str, Any] | None:
    from rnnclf.config.loading import load_config
    from rnnclf.config.rules import check_pretrainable, pretrain_warnings
    from rnnclf.recipes.pretrain import pretrain, resume_pretrain
    from rnnclf.training.distributed import LAUNCHED
    from rnnclf.training.session import check_run_dir

    if resume is not None:
        if nproc > 1 and "WORLD_SIZE" not in os.environ and not _complete(resume):
            raise typer.Exit(_launch(nproc, resume, resume=resume, command="pretrain"))
        return resume_pretrain(resume, command=sys.argv, log=log)
    resolved = load_config(config, overrides)
    check_pretrainable(resolved, config)
    if rank_zero() and not os.environ.get(LAUNCHED):
        for warning in pretrain_warnings(resolved):
            log(f"rnnclf: warning: {config}: {warning}")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        check_run_dir(Path(resolved.output.run_dir))
        _check_gpus(nproc, resolved.train.device)
        raise typer.Exit(
            _launch(nproc, Path(resolved.output.run_dir), config=config, overrides=overrides, command="pretrain")
        )
    return pretrain(resolved, command=sys.argv, log=log)


def _check_gpus(nproc: int, device: str) -> None:
    """On CUDA each process needs a GPU of its own."""
    import torch

    gpus = torch.cuda.device_count() if device != "cpu" and torch.cuda.is_available() else 0
    if gpus and nproc > gpus:
        raise RnnclfError(
            f"--nproc {nproc} needs {nproc} GPUs with train.device {device!r}, and {gpus} is visible; "
            f"use --nproc {gpus}, or --device cpu"
        )


def _launch(
    nproc: int,
    run_dir: Path,
    config: Path | None = None,
    overrides: list[str] | None = None,
    resume: Path | None = None,
    command: str = "train",
) -> int:
    """torchrun, in this process, starting `nproc` copies of `rnnclf train` (or `command`) with the same arguments;
    `run_dir` is where they write, named in the line that says how to continue after a failure."""
    from rnnclf.training.checkpoint import has_state
    from rnnclf.training.distributed import launch

    argv = ["--resume", str(resume)] if resume is not None else ["--config", str(config)]
    for item in overrides or []:
        argv += ["--set", item]

    def after_failure() -> str:
        if not has_state(run_dir):
            return "no state was saved yet"
        return f"continue with: rnnclf {command} --resume {run_dir} --nproc {nproc}"

    return launch(nproc, ["--debug", command, *argv] if app_state.debug else [command, *argv], after_failure)
