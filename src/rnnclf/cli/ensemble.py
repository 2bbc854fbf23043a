"""rnnclf ensemble: several finished runs made into one that answers with their mean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rnnclf.cli.app import Device, Format, app, log, output_format


@app.command()
def ensemble(
    runs: Annotated[list[Path], typer.Argument(help="Finished run directories with the same labels and task.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The ensemble directory to write (must not exist).")],
    device: Annotated[
        Device, typer.Option("--device", help="auto (CUDA when there is one), cpu or cuda.")
    ] = Device.auto,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table or json (default: table on a terminal, json otherwise).")
    ] = None,
) -> None:
    """Average the calibrated probabilities of runs (other seeds, encoders, with or without the wide head) into
    one directory that eval, predict, serve and report take like a run, and a teacher for train.teacher.

    The members are named by path with the digest of their files: a member that moved or changed since is
    refused. Members that share a validation split (a valid file, or the same data.valid_seed) get the mean
    calibrated (and multi-label thresholds chosen) there again; see docs/ensembles.md.

    Example: rnnclf ensemble runs/r8-seed0 runs/r8-seed1 runs/r8-seed2 --out runs/r8-ensemble
    """
    from rnnclf.device.cores import available_cores
    from rnnclf.device.threads import use_cpu_threads
    from rnnclf.recipes.ensemble import make_ensemble

    use_cpu_threads(1)  # one thread per worker, a worker per core: the fastest way to predict on a CPU
    summary = make_ensemble(runs, out, log, device.value, available_cores())
    if output_format(fmt) is Format.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(format_summary(summary))


def format_summary(summary: dict) -> str:
    """The ensemble's and each member's headline score on test (else valid)."""
    split = "test" if summary.get("test") else "valid"
    key = "micro_f1" if summary.get("multi_label") else "accuracy"
    report = summary.get(split)
    if not report:
        return "no labelled split to score on (the members' validation splits differ and there is no test split)"
    lines = [f"{split} {key.replace('_', ' ')}:", f"  ensemble  {report[key]:.4f}"]
    for member in summary["member_scores"][split]:
        lines.append(f"  {member[key]:.4f}  {member['path']}")
    return "\n".join(lines)


def is_ensemble(run: Path) -> bool:
    """Told from the file alone: the linear model's numpy predictor imports no torch, nor may this."""
    from rnnclf.files import ENSEMBLE

    return (run / ENSEMBLE).is_file()


def ensemble_predictor(run: Path, device: str, int8: bool):
    from rnnclf.device.cores import available_cores
    from rnnclf.device.threads import use_cpu_threads
    from rnnclf.inference.ensemble import load_predictor

    use_cpu_threads(1)  # one thread per worker, a worker per core
    return load_predictor(run, device, available_cores(), int8)
