"""rnnclf tune: search a config's settings within a budget (Optuna; the tune extra)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnclf.cli.app import Device, Format, app, log, output_format, rank_zero
from rnnclf.errors import RnnclfError

INSTALL_TUNE = "pip install 'rnnclf[tune]'"
DEFAULT_BUDGET = 1800.0  # seconds, when neither --budget nor --trials is given


SpaceOption = Annotated[
    Path | None,
    typer.Option(
        "--space",
        help="YAML search space: section.key with a range {low: A, high: B} (log: true, step: S) or a list of "
        "choices; default: the built-in space.",
    ),
]
BudgetOption = Annotated[
    str | None,
    typer.Option(
        "--budget", help="Time for the whole study, with its unit: 90s, 20m, 1h30m (default 30m unless --trials)."
    ),
]
TrialsOption = Annotated[
    int | None,
    typer.Option(
        "--trials", min=1, help="Trials for the whole study (finished or pruned; a stopped one is run again)."
    ),
]
StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage", help="Study database URL (default sqlite:///OUT/study.db); e.g. postgresql://... to share a study."
    ),
]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a key of the config: --set train.epochs=5 (repeatable).")
]
DeviceOption = Annotated[Device | None, typer.Option("--device", help="auto, cpu or cuda (overrides train.device).")]
NprocOption = Annotated[
    int, typer.Option("--nproc", min=1, help="Train each trial in N processes (DistributedDataParallel, torchrun).")
]


@app.command()
def tune(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config to start from (trial 0).")],
    space: SpaceOption = None,
    budget: BudgetOption = None,
    trials: TrialsOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<config name>-tune).")] = None,
    storage: StorageOption = None,
    overrides: SetOption = None,
    device: DeviceOption = None,
    keep: Annotated[int, typer.Option("--keep", min=1, help="Trials that keep their weights (the best ones).")] = 3,
    fmt: Annotated[Format | None, typer.Option("--format", help="Summary as table or json.")] = None,
    nproc: NprocOption = 1,
) -> None:
    """Search the config's settings on the validation split; the best is OUT/best.yaml, an ordinary config.

    Example: rnnclf tune --config my.yaml --budget 20m

    Ctrl-C (or a kill) stops it; the same command continues the same study. Several processes or machines work on
    one study with the same --out name and --storage.
    """
    from rnnclf.cli.train import _check_gpus, _wait_policy

    _wait_policy()
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise RnnclfError(f"rnnclf tune needs Optuna: {INSTALL_TUNE}") from None
    from rnnclf.recipes.tune.search import TRIALS_DIR, run_tune
    from rnnclf.training.session import TrainingStopped

    settings = _settings(config, overrides, device, space, budget, trials, out, storage, keep)
    base, folder = settings.base, settings.out
    if nproc > 1 and "WORLD_SIZE" not in os.environ:  # torchrun starts N copies of this command
        from rnnclf.training.distributed import launch

        _check_gpus(nproc, base.train.device)
        again = f"the study keeps its finished trials; continue with the same command: {_command()}"
        raise typer.Exit(launch(nproc, ["tune", *_without_nproc(sys.argv[1:])], lambda: again))
    new_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        summary = run_tune(settings, sys.argv, log if rank_zero() else lambda line: None)
    except (TrainingStopped, KeyboardInterrupt) as stop:  # Ctrl-C in a trial's training, or between trials
        if rank_zero():
            log(f"rnnclf: stopped; the study keeps its finished trials. Continue with the same command: {_command()}")
        raise typer.Exit(getattr(stop, "code", 130)) from None
    except RnnclfError:
        if new_folder and not (folder / TRIALS_DIR).exists():  # a mistake found before any trial leaves nothing
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if summary is None:  # --nproc: a process other than rank 0
        return
    if output_format(fmt) is Format.json:
        typer.echo(json.dumps(summary))
    else:
        from rnnclf.recipes.tune.outputs import SUMMARY_MD

        typer.echo((folder / SUMMARY_MD).read_text(encoding="utf-8"))


def _without_nproc(argv: list[str]) -> list[str]:
    """The command's own arguments after `tune`, less --nproc (the launched copies run one process each)."""
    args = argv[argv.index("tune") + 1 :]
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


def _command() -> str:
    """The command as the user typed it (under --nproc: with --nproc, as torchrun's copies lost it)."""
    args = sys.argv[sys.argv.index("tune") :] if "tune" in sys.argv else sys.argv[1:]
    world = os.environ.get("WORLD_SIZE", "1")
    return " ".join(["rnnclf", *args] + (["--nproc", world] if world != "1" else []))


def _settings(
    config: Path,
    overrides: list[str] | None,
    device: Device | None,
    space: Path | None,
    budget: str | None,
    trials: int | None,
    out: Path | None,
    storage: str | None,
    keep: int,
) -> Any:
    """The tune's settings from the command line, each mistake one line."""
    from rnnclf.config.loading import load_config
    from rnnclf.config.rules import inert_settings
    from rnnclf.recipes.tune.search import TuneSettings
    from rnnclf.recipes.tune.study import parse_duration

    extra = list(overrides or []) + ([f"train.device={device.value}"] if device is not None else [])
    base = load_config(config, extra)
    if rank_zero() and "RNNCLF_LAUNCHED" not in os.environ:
        for warning in inert_settings(base):
            log(f"rnnclf: warning: {config}: {warning}")
        if budget is None and trials is None:
            log("rnnclf: budget 30m (the default; --budget or --trials to change it)")
    seconds = parse_duration(budget) if budget is not None else (None if trials else DEFAULT_BUDGET)
    if seconds is not None and seconds <= 0:
        raise RnnclfError(f"--budget {budget}: must be above zero")
    folder = out or Path("runs") / f"{config.stem}-tune"
    if folder.exists() and not folder.is_dir():
        raise RnnclfError(f"--out {folder}: exists and is not a folder")
    if space is not None and not space.exists():
        raise RnnclfError(f"--space {space}: search space file not found")
    return TuneSettings(config, base, folder, space, seconds, trials, storage, keep)
