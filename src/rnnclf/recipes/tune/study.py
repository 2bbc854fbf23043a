"""A tune's study database and its bookkeeping: opening the storage (once more when workers start together),
durations, trials that a killed process left running, and whether a study matches the config it continues."""

from __future__ import annotations

import fcntl
import os
import re
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rnnclf.config.loading import config_to_dict
from rnnclf.config.schema import Config
from rnnclf.errors import RnnclfError

STUDY_DB, LOCK_FILE = "study.db", ".study.lock"
HEARTBEAT_SECONDS, GRACE_SECONDS = 60, 180  # a trial of another machine silent for this long was killed
OPEN_ATTEMPTS = 5
# the pip packages of SQLAlchemy's database drivers, by the module it imports (postgresql:// means psycopg 3)
DRIVERS = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient", "pymysql": "pymysql"}
HOST = socket.gethostname()


def parse_duration(text: str) -> float:
    """'90s', '20m', '1h30m', '2.5h' -> seconds (a bare number is a mistake: minutes or seconds?)."""
    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        raise RnnclfError(f"--budget {text}: give a unit: {cleaned}s, {cleaned}m or {cleaned}h")
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", cleaned)
    if not parts or "".join(number + unit for number, unit in parts) != cleaned:
        raise RnnclfError(f"--budget {text!r}: expected a duration such as 90s, 20m, 1h30m")
    return sum(float(number) * {"h": 3600, "m": 60, "s": 1}[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """4.2s, 42s, 4m05s, 1h02m03s."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}s"
    if round(seconds) < 60:
        return f"{round(seconds)}s"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h{minutes:02d}m" if hours else f"{minutes}m") + f"{secs:02d}s"


def open_storage(url: str | None, out: Path) -> tuple[optuna.storages.RDBStorage, str]:
    """The study's database (SQLite in the output folder by default), with heartbeats so that a trial whose
    machine died is found and run again."""
    url = url or f"sqlite:///{(out / STUDY_DB).resolve()}"
    shown = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)  # no password in messages
    for attempt in range(OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental; they are what this needs
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                    heartbeat_stale_trial_callback=rerun_failed,
                )
            break
        except ImportError as exc:
            module = getattr(exc.__cause__, "name", None) or exc.name  # Optuna wraps the driver's ImportError
            package = DRIVERS.get(module or "", module)
            hint = f": pip install '{package}'" if package else ""
            raise RnnclfError(f"--storage {shown}: its database driver is not installed{hint}") from None
        except Exception as exc:  # sqlalchemy's errors: a bad URL, a server that does not answer, a refused login
            # two workers that start together both create the tables: the second waits for the first
            racing = any(mark in str(exc) for mark in ("UNIQUE constraint", "already exists", "locked"))
            if not racing or attempt == OPEN_ATTEMPTS - 1:
                raise RnnclfError(f"--storage {shown}: cannot open the study database ({first_line(exc)})") from None
            time.sleep(0.5 + attempt)
    return storage, shown


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Workers of this machine that share the output folder take turns here (creating the study, queueing trial
    0): two started together would otherwise both queue it."""
    with (out / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rerun_failed(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> None:
    """A trial stopped by its process's end (not by its settings) runs again with the same values."""
    attrs = {"rerun_of": trial.number} | ({"baseline": True} if trial.user_attrs.get("baseline") else {})
    study.enqueue_trial(trial.params, user_attrs=attrs, skip_if_exists=False)


def was_interrupted(trial: FrozenTrial, rerun: set[Any]) -> bool:
    """Failed because its process stopped (Ctrl-C, a kill, a machine whose heartbeat stopped): it runs again, and
    `rerun` (the trials run again) holds its number."""
    failure = str(trial.user_attrs.get("failure", ""))
    stopped = failure == "interrupted" or failure.startswith("killed") or trial.number in rerun
    return trial.state == TrialState.FAIL and stopped


def impossible(trial: FrozenTrial) -> bool:
    """A combination no config allows: it cost nothing and counts for nothing."""
    return str(trial.user_attrs.get("stopped", "")).startswith("an impossible combination")


def alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def comparable(config: Config) -> dict[str, Any]:
    raw = config_to_dict(config)
    raw["output"] = {key: value for key, value in raw["output"].items() if key != "run_dir"}
    # where and on how many threads a worker trains is its own affair (one worker per GPU, another on the CPU)
    raw["train"] = {key: value for key, value in raw["train"].items() if key not in ("device", "num_threads")}
    return raw


def first_difference(before: dict[str, Any], now: dict[str, Any]) -> str:
    flat_before, flat_now = flatten(before), flatten(now)
    for key in sorted(set(flat_before) | set(flat_now)):
        if flat_before.get(key) != flat_now.get(key):
            return f"{key}: {flat_before.get(key)!r} then, {flat_now.get(key)!r} now"
    return "they differ"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat |= flatten(item, f"{prefix}.{key}" if prefix else str(key))
    return flat


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
