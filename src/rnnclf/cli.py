"""The command line. Each command parses, calls one library function, and prints.

torch is imported inside the commands that need it, so `rnnclf --help` and `rnnclf config show` are quick.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rnnclf import __version__
from rnnclf.errors import RnnclfError

app = typer.Typer(
    help="Train recurrent (RNN / LSTM / GRU) text classifiers from YAML configs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(
    help="Inspect configs.\n\nExample: rnnclf config show configs/quickstart.yaml", no_args_is_help=True
)
data_app = typer.Typer(help="Built-in corpora.\n\nExample: rnnclf data list", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")

_debug = False


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Split(StrEnum):
    valid = "valid"
    test = "test"


class Format(StrEnum):
    table = "table"
    json = "json"


class Backend(StrEnum):
    torch = "torch"
    onnx = "onnx"


class ExportFormat(StrEnum):
    onnx = "onnx"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnclf {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    global _debug
    _debug = debug


def _output_format(fmt: Format | None) -> Format:
    """Tables for people at a terminal, JSON when the output goes to a program."""
    return fmt or (Format.table if sys.stdout.isatty() else Format.json)


def _rank_zero() -> bool:
    """True unless this is another process of a distributed run (torchrun sets RANK); only rank 0 reports."""
    return os.environ.get("RANK", "0") == "0"


def _log(message: str) -> None:
    typer.echo(message, err=True)


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

    Several processes: rnnclf train --config FILE --nproc 2 (or torchrun --nproc-per-node 2 -m rnnclf train --config FILE)
    """
    from rnnclf.config import load_config
    from rnnclf.train import TrainingStopped
    from rnnclf.train import resume as resume_training
    from rnnclf.train import train as run_training

    try:
        if resume is not None:
            if config is not None or overrides or run_dir is not None or device is not None:
                raise RnnclfError(
                    "--resume continues a run with its own config; do not combine it with --config, --set, --run-dir or --device"
                )
            if nproc > 1 and "WORLD_SIZE" not in os.environ:
                from rnnclf.run import load_run

                _check_gpus(nproc, load_run(resume, weights=False).config.train.device)
                raise typer.Exit(_launch(nproc, resume=resume))
            summary = resume_training(resume, command=sys.argv, log=_log)
        else:
            if config is None:
                raise RnnclfError("give --config FILE (or --resume RUN to continue a run)")
            extra = list(overrides or [])
            if run_dir is not None:
                extra.append(f"output.run_dir={run_dir}")
            if device is not None:
                extra.append(f"train.device={device.value}")
            resolved = load_config(config, extra)
            if nproc > 1 and "WORLD_SIZE" not in os.environ:
                from rnnclf.train import check_run_dir

                check_run_dir(Path(resolved.output.run_dir))  # one clear line here, not one per process
                _check_gpus(nproc, resolved.train.device)
                raise typer.Exit(_launch(nproc, config=config, overrides=extra))
            summary = run_training(resolved, command=sys.argv, log=_log)
    except TrainingStopped as stop:
        if _rank_zero():
            _log(f"rnnclf: {stop}")
        raise typer.Exit(stop.code) from None
    if not _rank_zero():
        return  # rank 0 of a distributed run reports
    best = summary["test"] or summary["valid"]
    if _output_format(fmt) is Format.json:
        scores = ("accuracy", "macro_f1", "weighted_f1", "loss")
        brief = {key: summary[key] for key in ("best_epoch", "epochs_run", "metric", "train_seconds", "tokens_per_s")}
        for split in ("valid", "test"):
            brief[split] = {key: summary[split][key] for key in scores} if summary[split] else None
        typer.echo(json.dumps(brief))
        return
    typer.echo(
        f"done: best epoch {summary['best_epoch']}, {'test' if summary['test'] else 'valid'} accuracy {best['accuracy']:.4f}, "
        f"macro F1 {best['macro_f1']:.4f}, {summary['train_seconds']:.1f}s"
    )


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
    nproc: int, config: Path | None = None, overrides: list[str] | None = None, resume: Path | None = None
) -> int:
    """torchrun, in this process, starting `nproc` copies of `rnnclf train` with the same arguments."""
    from rnnclf.distributed import launch

    argv = ["--resume", str(resume)] if resume is not None else ["--config", str(config)]
    for item in overrides or []:
        argv += ["--set", item]
    return launch(nproc, ["--debug", "train", *argv] if _debug else ["train", *argv])


@app.command("eval")
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled file to evaluate on (same columns as training).")
    ] = None,
    split: Annotated[
        Split | None, typer.Option("--split", help="The run's own split (default: test if it has one, else valid).")
    ] = None,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table or json (default: table on a terminal, json otherwise).")
    ] = None,
    device: Annotated[
        Device, typer.Option("--device", help="auto (CUDA when there is one), cpu or cuda.")
    ] = Device.auto,
) -> None:
    """Accuracy, macro / weighted F1, per-class scores and the confusion matrix of a run.

    Example: rnnclf eval runs/quickstart --split test
    """
    from rnnclf.metrics import format_report
    from rnnclf.predict import evaluate_run

    if data is not None and split is not None:
        raise RnnclfError("give --data or --split, not both")
    report = evaluate_run(run, data, split.value if split else None, device.value, log=_log)
    if _output_format(fmt) is Format.json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(format_report(report, title=f"{run} on {report['data']}"))


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    input_path: Annotated[
        str | None,
        typer.Option("--input", "-i", help="File of texts (one per line, or CSV / TSV / JSONL), or - for stdin."),
    ] = None,
    text_field: Annotated[
        str | None,
        typer.Option(
            "--text-field", help="Column / key of the text in CSV or JSONL input (default: the run's data.text_field)."
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many labels to show per text.")] = 1,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="table or json lines (default: table on a terminal, json otherwise)."),
    ] = None,
    device: Annotated[
        Device, typer.Option("--device", help="auto (CUDA when there is one), cpu or cuda.")
    ] = Device.auto,
    backend: Annotated[
        Backend,
        typer.Option(
            "--backend", help="torch, or onnx: RUN/model.onnx in ONNX Runtime on the CPU (see `rnnclf export`)."
        ),
    ] = Backend.torch,
) -> None:
    """Predict labels with probabilities.

    Example: rnnclf predict runs/quickstart "oil prices rose sharply" --top-k 3
    """
    from rnnclf.predict import Predictor, format_predictions, read_inputs

    if backend is Backend.onnx:
        from rnnclf.export import OnnxPredictor

        if device is not Device.auto:
            raise RnnclfError("--device is for the torch backend; the onnx backend runs on the CPU")
        predictor = OnnxPredictor.load(run)
    else:
        predictor = Predictor.load(run, device.value)
    items = list(texts or [])
    if input_path is not None:
        items += read_inputs(input_path, text_field or predictor.run.config.data.text_field)
    if not items:
        raise RnnclfError("no texts to classify: give them as arguments, or --input FILE (or - for stdin)")
    typer.echo(format_predictions(items, predictor.predict(items, top_k), _output_format(fmt).value))


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories written by `rnnclf train`.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the table as Markdown to this file.")
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="table, json or markdown (default: table on a terminal, json otherwise)."),
    ] = None,
) -> None:
    """Compare runs: the config keys that differ, best epoch, valid / test scores, train time, parameters.

    Example: rnnclf report runs/lstm runs/gru --out report.md
    """
    from rnnclf.report import compare_runs, format_json, format_markdown, format_table, write_markdown

    rows = compare_runs(runs)
    chosen = fmt.value if fmt else _output_format(None).value
    typer.echo({"table": format_table, "json": format_json, "markdown": format_markdown}[chosen](rows))
    if out is not None:
        write_markdown(rows, out)
        _log(f"report written to {out}")


@app.command()
def serve(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for every network interface.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.")] = 8000,
    device: Annotated[
        Device, typer.Option("--device", help="auto (CUDA when there is one), cpu or cuda.")
    ] = Device.auto,
    max_texts: Annotated[
        int, typer.Option("--max-texts", min=1, help="Most texts in one request (more answer 413).")
    ] = 256,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body in bytes (larger answer 413).")
    ] = 1_000_000,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="torch CPU threads per request; requests run in parallel.")
    ] = 1,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request (uvicorn's log).")] = False,
) -> None:
    """Serve a run's predictions over HTTP: POST /predict, GET /info, GET /health; API docs at /docs.

    Needs FastAPI and uvicorn: pip install 'rnnclf\\[serve]'.

    Example: rnnclf serve runs/quickstart --port 8000
    """
    from rnnclf.serve import serve as serve_run

    serve_run(run, host, port, device.value, max_texts, max_body_bytes, threads, access_log, log=_log)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="onnx (the only format so far).")] = ExportFormat.onnx,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the model here (default RUN/model.onnx).")
    ] = None,
) -> None:
    """Export a run to ONNX, checked against PyTorch on the run's own texts before it is written.

    model.onnx takes ids (int64, batch x time, each text's token ids padded with 0) and lengths (int64, batch); it gives probabilities (float32, batch x classes).

    model.onnx.json beside it names the inputs, the labels in output order, the tokenizer (RUN/tokenizer.json), max_length and the pad / unk ids: all a program without rnnclf needs.

    Needs onnxruntime: pip install 'rnnclf\\[onnx]'.

    Example: rnnclf export runs/quickstart --format onnx
    """
    from rnnclf.export import export_onnx

    target = out or run / "model.onnx"
    sidecar = export_onnx(run, target, log=_log)
    check = sidecar["check"]
    typer.echo(
        f"wrote {target} and {target}.json: largest probability difference from PyTorch "
        f"{check['max_difference']:.1e} on {check['count']} texts (allowed {check['tolerance']:g})"
    )


@config_app.command("show")
def config_show(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a key (repeatable).")] = None,
) -> None:
    """Print the resolved config, every default filled in.

    Example: rnnclf config show configs/quickstart.yaml --set model.encoder=gru
    """
    from rnnclf.config import dump_config, load_config

    typer.echo(dump_config(load_config(config, overrides or [])), nl=False)


def _count(n: int | None) -> str:
    return f"{n:,}" if n else "?"


@data_app.command("list")
def data_list(
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table or json (default: table on a terminal, json otherwise).")
    ] = None,
) -> None:
    """The built-in corpora: name, size, classes, source, and whether they are cached.

    Example: rnnclf data list --format json
    """
    from rnnclf.data.builtin import CORPORA, is_cached

    if _output_format(fmt) is Format.json:
        rows = [
            {
                "name": info.name,
                "train": info.train_size,
                "test": info.test_size,
                "classes": info.num_classes,
                "cached": is_cached(info.name),
                "source": info.source,
                "description": info.description,
            }
            for info in CORPORA.values()
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'name':<14} {'train':>8} {'test':>8} {'classes':>7}  {'cached':<6}  source / description")
    for info in CORPORA.values():
        typer.echo(
            f"{info.name:<14} {_count(info.train_size):>8} {_count(info.test_size):>8} {_count(info.num_classes):>7}  "
            f"{'yes' if is_cached(info.name) else 'no':<6}  {info.source}: {info.description}"
        )


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Corpus name from `rnnclf data list`.")],
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table or json (default: table on a terminal, json otherwise).")
    ] = None,
) -> None:
    """Download and convert a built-in corpus into the cache (RNNCLF_CACHE, default ~/.cache/rnnclf).

    Example: rnnclf data fetch r8
    """
    from rnnclf.data.builtin import fetch

    files = fetch(name, log=_log)
    if _output_format(fmt) is Format.json:
        typer.echo(json.dumps({split: str(path) for split, path in files.items()}))
        return
    for split, path in files.items():
        typer.echo(f"{split}: {path}")


def main() -> None:
    """Entry point: user mistakes (bad arguments too) become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except RnnclfError as exc:
        if _debug:
            raise
        code = getattr(exc, "exit_code", 2)
        # the processes of a distributed run meet the same mistakes: rank 0 tells the user, once
        if not _rank_zero() and not getattr(exc, "every_rank", False):
            sys.exit(code)
        typer.echo(f"rnnclf: error: {exc}", err=True)
        sys.exit(code)
    except typer.TyperException as exc:  # the argument parser's usage errors
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
        else:
            context = getattr(exc, "ctx", None)
            hint = f" (see '{context.command_path} --help')" if context is not None else ""
            typer.echo(f"rnnclf: error: {exc.format_message()}{hint}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        typer.echo("rnnclf: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
