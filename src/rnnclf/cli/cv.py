"""rnnclf cv: K-fold cross-validation of a config on its training split (recipes/cv.py, recipes/cv_summary.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rnnclf.cli.app import Device, Format, app, log, output_format
from rnnclf.errors import RnnclfError


@app.command()
def cv(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file.")],
    folds: Annotated[int, typer.Option("--folds", "-k", help="How many folds (2 or more).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the folds' runs and the summary.")],
    seeds: Annotated[
        str | None,
        typer.Option(
            "--seeds", help="Repeat with these seeds, e.g. 0,1,2: new folds and train.seed each (default: train.seed)."
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: --set train.epochs=3 (repeatable).")
    ] = None,
    device: Annotated[
        Device | None, typer.Option("--device", help="auto, cpu or cuda (overrides train.device).")
    ] = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Train each fold in N processes (torchrun).")] = 1,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table or json (default: table on a terminal, json otherwise).")
    ] = None,
) -> None:
    """Cross-validate a config: K folds of its training split, each fold an ordinary run tested on the fold it left out.

    Writes the runs (OUT/seed<S>/fold<K>/), every score's mean ± std over the folds (summary.json, summary.md,
    cv.png), every training text's out-of-fold probabilities (oof.jsonl) and the likely label errors among them
    (label_errors.json; also shown by rnnclf data check --label-errors OUT).

    Interrupted, the same command continues where it stopped.

    Example: rnnclf cv --config configs/r8.yaml --folds 5 --out runs/r8-cv
    """
    from rnnclf.cli.train import _wait_policy
    from rnnclf.config.rules import train_warnings
    from rnnclf.recipes.cv import plan_cv, run_cv
    from rnnclf.recipes.cv_summary import summarize
    from rnnclf.training.session import TrainingStopped

    _wait_policy()
    extra = list(overrides or []) + ([f"train.device={device.value}"] if device is not None else [])
    plan = plan_cv(config, extra, folds, _seeds(seeds), out)
    for warning in train_warnings(plan.config):
        log(f"rnnclf: warning: {config}: {warning}")
    try:
        run_cv(plan, _fold_trainer(plan.config_path, nproc), log)
    except TrainingStopped as stop:
        log(f"rnnclf: {stop}")
        log(f"rnnclf: cv: finished folds are kept; the same rnnclf cv command continues from here ({out})")
        raise typer.Exit(stop.code) from None
    summary = summarize(plan, log)
    log(f"cv: wrote {out / 'summary.json'}, summary.md, cv.png, oof.jsonl and label_errors.json")
    if output_format(fmt) is Format.json:
        brief = {key: summary[key] for key in ("folds", "seeds", "mean", "std", "errors")}
        typer.echo(json.dumps(brief | {"linear_baseline": summary.get("linear_baseline")}))
        return
    from rnnclf.recipes.cv_summary import format_summary

    typer.echo(format_summary(summary), nl=False)


def _seeds(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        seeds = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise RnnclfError(f"--seeds {value}: give whole numbers separated by commas, e.g. 0,1,2") from None
    if not seeds:
        raise RnnclfError("--seeds: give at least one seed, e.g. 0,1,2")
    return seeds


def _fold_trainer(config: Path, nproc: int):
    """How each fold trains: in this process, or with --nproc in N processes started by torchrun."""
    from rnnclf.cli.train import _launch
    from rnnclf.config.loading import load_config
    from rnnclf.recipes.classify import resume, train

    def train_fold(run_dir: Path, overrides: list[str] | None) -> None:
        if nproc > 1 and "WORLD_SIZE" not in os.environ:
            code = _launch(nproc, run_dir, config, overrides, run_dir if overrides is None else None)
            if code != 0:
                log(f"rnnclf: cv: the fold's training failed; the same rnnclf cv command continues it ({run_dir})")
                raise typer.Exit(code)
        elif overrides is None:
            resume(run_dir, command=sys.argv, log=log)
        else:
            train(load_config(config, overrides), command=sys.argv, log=log)

    return train_fold
