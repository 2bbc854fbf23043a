"""The Typer app, its option types and what every command shares (output format, logging, rank)."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from rnnclf import __version__

app = typer.Typer(
    help="Train recurrent (RNN / LSTM / GRU) text classifiers from YAML configs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(
    help="Inspect configs.\n\nExample: rnnclf config show configs/quickstart.yaml", no_args_is_help=True
)
data_app = typer.Typer(
    help="Built-in corpora, and a check of any data before training.\n\nExample: rnnclf data check --config my.yaml",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")


class AppState:
    debug = False  # --debug: full tracebacks


app_state = AppState()


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class SplitName(StrEnum):
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


class Quantize(StrEnum):
    int8 = "int8"


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
    app_state.debug = debug


def output_format(fmt: Format | None) -> Format:
    """Tables for people at a terminal, JSON when the output goes to a program."""
    return fmt or (Format.table if sys.stdout.isatty() else Format.json)


def rank_zero() -> bool:
    """True unless this is another process of a distributed run (torchrun sets RANK); only rank 0 reports."""
    return os.environ.get("RANK", "0") == "0"


def log(message: str) -> None:
    typer.echo(message, err=True)
