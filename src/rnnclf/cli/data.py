"""rnnclf config show, rnnclf data list / fetch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rnnclf.cli.app import (
    Format,
    config_app,
    data_app,
    log,
    output_format,
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

    if output_format(fmt) is Format.json:
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
    width = max(len(name) for name in CORPORA)
    typer.echo(f"{'name':<{width}} {'train':>8} {'test':>8} {'classes':>7}  {'cached':<6}  source / description")
    for info in CORPORA.values():
        typer.echo(
            f"{info.name:<{width}} {_count(info.train_size):>8} {_count(info.test_size):>8} {_count(info.num_classes):>7}  "
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

    files = fetch(name, log=log)
    if output_format(fmt) is Format.json:
        typer.echo(json.dumps({split: str(path) for split, path in files.items()}))
        return
    for split, path in files.items():
        typer.echo(f"{split}: {path}")
