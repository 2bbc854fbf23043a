"""The command line. Each command parses, calls one library function, and prints.

torch is imported inside the commands that need it, so `rnnclf --help` and `rnnclf config show` are quick.
Commands live in cli/train.py, cli/runs.py (eval, predict, report), cli/deploy.py (serve, export),
cli/ensemble.py, cli/tune.py, cli/cv.py, cli/active.py (suggest) and cli/data.py.
"""

from __future__ import annotations

import sys

import typer

from rnnclf.cli import train  # noqa: F401, I001  # isort: skip  (registered first: listed first in --help)
from rnnclf.cli import runs, deploy, cv, ensemble, tune, active, data  # noqa: F401, I001  # isort: skip  (each registers its commands; --help lists them in this order)
from rnnclf.cli.app import app, app_state, rank_zero
from rnnclf.errors import RnnclfError


def main() -> None:
    """Entry point: user mistakes (bad arguments too) become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except RnnclfError as exc:
        if app_state.debug:
            raise
        code = getattr(exc, "exit_code", 2)
        # the processes of a distributed run meet the same mistakes: rank 0 tells the user, once
        if not rank_zero() and not getattr(exc, "every_rank", False):
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
