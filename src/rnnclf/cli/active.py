"""rnnclf suggest: which unlabelled texts to label next (active/)."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from rnnclf.cli.app import Device, Format, app, log, output_format
from rnnclf.errors import RnnclfError


class Strategy(enum.StrEnum):
    margin = "margin"
    entropy = "entropy"
    diverse = "diverse"
    random = "random"


@app.command()
def suggest(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    pool: Annotated[
        Path, typer.Option("--pool", help="Unlabelled texts: .csv / .tsv / .jsonl, or .txt (one per line).")
    ],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="How many texts to suggest.")],
    strategy: Annotated[
        Strategy, typer.Option("--strategy", help="margin, entropy, diverse (unsure and unlike each other) or random.")
    ] = Strategy.margin,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write (default: POOL's name + '-to-label').")
    ] = None,
    text_field: Annotated[
        str | None, typer.Option("--text-field", help="The pool's text column or key (default: the run's).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random strategy and of diverse's sample.")] = 0,
    device: Annotated[Device, typer.Option("--device", help="auto, cpu or cuda.")] = Device.auto,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table or json (default: table on a terminal, json otherwise).")
    ] = None,
) -> None:
    """Suggest the texts of an unlabelled pool worth labelling next, as a file ready to label.

    The file has the run's training format with the label empty, and the model's guess, its probability, the
    strategy's score and the pool line beside each text. Texts the run has already (exactly or nearly) are skipped.
    Label them, add them to the training data, and update the model: rnnclf train --config FILE --init RUN.

    Example: rnnclf suggest runs/quickstart --pool unlabelled.jsonl --k 200 --strategy diverse
    """
    from tqdm import tqdm

    from rnnclf.active.pool import open_pool
    from rnnclf.active.suggest import Request
    from rnnclf.active.suggest import suggest as run_suggest
    from rnnclf.runs.directory import load_run

    loaded = load_run(run, weights=False)
    _check_run(loaded)
    data = loaded.config.data
    request_pool = open_pool(pool, text_field or data.text_field, data.label_field)
    target = _target(loaded, pool, out)
    predictor = _predictor(loaded, device, strategy)
    request = Request(run, pool, k, strategy.value, target, seed)
    progress = tqdm(desc="suggest", unit=" texts", disable=None, leave=False)
    summary = run_suggest(request, predictor, request_pool, log, progress)
    if output_format(fmt) is Format.json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"wrote {summary['suggested']:,} texts to label to {summary['out']} ({strategy.value}; "
            f"{summary['pool_texts']:,} pool texts read, {summary['skipped_known']:,} skipped as the run has them, "
            f"{summary['skipped_repeats']:,} as repeats, {summary['seconds']:.1f}s)"
        )


def _check_run(loaded) -> None:
    """A finished run whose fields are not named like the columns suggest adds."""
    run, data = loaded.path, loaded.config.data
    if not (run / "metrics.json").exists():
        raise RnnclfError(
            f"{run}: the run has not finished (no metrics.json); finish it first: rnnclf train --resume {run}"
        )
    from rnnclf.active.suggest import EXTRA

    clash = {data.text_field, data.label_field} & set(EXTRA)
    if clash:
        raise RnnclfError(
            f"{run}: its data field '{clash.pop()}' is a column suggest adds (guess, probability, score, line); rename it"
        )


def _target(loaded, pool: Path, out: Path | None) -> Path:
    """--out, or POOL-to-label in the run's training format: a new file of that format in a folder that exists."""
    from rnnclf.active.suggest import output_kind
    from rnnclf.files import check_output_file

    kind = output_kind(loaded)
    extension = ".jsonl" if kind == "jsonl" else f".{kind}"
    target = out or pool.with_name(f"{pool.stem}-to-label{extension}")
    check_output_file(target, "--out", f"to_label{extension}")
    if target.exists():
        raise RnnclfError(f"--out {target}: exists; give another name (nothing is overwritten)")
    if target.suffix.lower() != extension:
        raise RnnclfError(f"--out {target}: the run's training data is {kind.upper()}; name it *{extension}")
    return target


def _predictor(loaded, device: Device, strategy: Strategy):
    """The linear model's numpy predictor (no text vectors: no diverse), or the torch one on every core."""
    from rnnclf.inference.linear import LinearPredictor, is_linear

    if is_linear(loaded):
        if strategy is Strategy.diverse:
            raise RnnclfError(
                f"{loaded.path}: a linear model has no text vectors for --strategy diverse; use margin or entropy"
            )
        return LinearPredictor(loaded)
    from rnnclf.device.cores import available_cores
    from rnnclf.device.threads import use_cpu_threads
    from rnnclf.inference.predictor import Predictor
    from rnnclf.runs.directory import load_weights

    use_cpu_threads(1)  # one thread per worker, a worker per core: the fastest way to predict on a CPU
    loaded.weights = load_weights(loaded.path)
    return Predictor(loaded, device.value, workers=available_cores())
