"""rnnclf config show, rnnclf data list / fetch / check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rnnclf.cli.app import Format, ReportFormat, config_app, data_app, log, output_format
from rnnclf.errors import RnnclfError


@config_app.command("show")
def config_show(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a key (repeatable).")] = None,
) -> None:
    """Print the resolved config, every default filled in.

    Example: rnnclf config show configs/quickstart.yaml --set model.encoder=gru
    """
    from rnnclf.config.loading import dump_config, load_config

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


@data_app.command("check")
def data_check(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Check this config's splits.")] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Check data files without a config (repeatable; the first is the training split)."),
    ] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config key (repeatable).")] = None,
    text_field: Annotated[str | None, typer.Option("--text-field", help="--data: the text column or key.")] = None,
    label_field: Annotated[str | None, typer.Option("--label-field", help="--data: the label column or key.")] = None,
    multi_label: Annotated[
        bool, typer.Option("--multi-label", help="--data: several labels per text (data.multi_label).")
    ] = False,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="table, json or markdown (default: table on a terminal, json otherwise)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the report as Markdown here.")] = None,
    label_errors: Annotated[
        Path | None,
        typer.Option(
            "--label-errors",
            help="Also list the training rows whose label looks wrong, from this folder of `rnnclf cv` (with --config).",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Exit 1 on a serious finding (overlap, conflicting labels, empty texts, ...)."),
    ] = False,
) -> None:
    """Check a corpus before training: labels, empty and repeated texts, conflicting labels, train / valid / test
    overlap (exact and near-duplicate), lengths in tokens, padding, vocabulary.

    Example: rnnclf data check --config configs/quickstart.yaml --out data_check.md

    Example: rnnclf data check --data train.csv --data test.csv --strict
    """
    from rnnclf.check.checker import check_data, check_inputs
    from rnnclf.check.render import format_json, format_markdown, format_table
    from rnnclf.files import check_output_file, write_atomic

    if out is not None:
        check_output_file(out, "--out", "data_check.md")
    given = {"text_field": text_field, "label_field": label_field, "multi_label": multi_label or None}
    fields = {key: value for key, value in given.items() if value is not None}
    splits, settings, source = check_inputs(config, data or [], overrides or [], fields)
    if label_errors is not None and config is None:
        raise RnnclfError("--label-errors reads a cross-validation of a config's training split; give --config too")
    report = check_data(splits, settings, source)
    if label_errors is not None:
        _add_label_errors(report, config, overrides or [], label_errors)
    if out is not None:  # written before anything is printed: a failed write leaves no report on the screen
        write_atomic(out, format_markdown(report).encode("utf-8"))
    chosen = fmt.value if fmt else output_format(None).value
    typer.echo({"table": format_table, "json": format_json, "markdown": format_markdown}[chosen](report))
    if out is not None:
        log(f"data check written to {out}")
    if strict and report["serious"]:
        log(f"rnnclf: data check: {report['serious']} serious finding(s) (--strict)")
        raise typer.Exit(1)


def _add_label_errors(report: dict, config: Path, overrides: list[str], cv_dir: Path) -> None:
    """The likely label errors of a cross-validation of this config, as one finding (the most likely, with their
    texts) and in full under "label_errors"."""
    from rnnclf.config.loading import load_config
    from rnnclf.recipes.cv_summary import label_error_finding

    finding, rows = label_error_finding(load_config(config, overrides), cv_dir)
    report["findings"].append(finding)
    report["label_errors"] = rows
