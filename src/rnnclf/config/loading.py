"""Reading a config: YAML, --set overrides, relative paths, every default filled in; each mistake one line
naming the file and key.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rnnclf.config.schema import DATA_PATH_KEYS, SECTIONS, Config
from rnnclf.errors import RnnclfError


def read_yaml(
    path: Path, kind: str = "config file", expected: str = "a mapping of sections (data, model, train, ...)"
) -> dict[str, Any]:
    """A YAML file holding a mapping; any problem is one line naming the file (and the line, for bad YAML)."""
    if not path.exists():
        raise RnnclfError(f"{path}: {kind} not found")
    if path.is_dir():
        raise RnnclfError(f"{path}: is a directory, expected a YAML {kind}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RnnclfError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RnnclfError(f"{path}:{where}: invalid YAML: {problem}") from None
    if raw is None:
        raise RnnclfError(f"{path}: {kind} is empty")
    if not isinstance(raw, dict):
        raise RnnclfError(f"{path}: expected {expected}, got {type(raw).__name__}")
    return raw


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys at the place where an unknown key was found."""
    if len(loc) == 1:
        return list(Config.model_fields)
    section = SECTIONS.get(str(loc[0]))
    return list(section.model_fields) if section else []


def _describe(error: dict[str, Any]) -> str:
    # loc is (section, key, <pydantic union details>...); the user knows section.key
    loc = [str(part) for part in error["loc"][:2]]
    name = ".".join(loc) or "config"
    if error["type"] == "extra_forbidden":
        candidates = _known_keys(tuple(error["loc"]))
        close = difflib.get_close_matches(loc[-1], candidates, n=1)
        suggestion = ".".join([*loc[:-1], close[0]]) if close else ""
        hint = f"; did you mean '{suggestion}'?" if close else f"; valid keys: {', '.join(candidates)}"
        return f"unknown key '{name}'{hint}"
    if error["type"] == "missing":
        return f"missing key '{name}'"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error" and len(error["loc"]) <= 1:  # a check across a section: it names the keys
        return message
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{name}: {message} (got {shown})"


def parse_config(raw: dict[str, Any], source: Path | str) -> Config:
    """Validate a config mapping; any problem becomes one line naming the file and key."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise RnnclfError(f"{source}: {_describe(exc.errors()[0])}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides; values are parsed as YAML (`3`, `true`, `null`, `[a, b]`)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise RnnclfError(f"--set {item}: expected section.key=value, e.g. train.lr=0.001")
        target = raw
        for part in parts[:-1]:
            if not isinstance(target.setdefault(part, {}), dict):
                raise RnnclfError(f"--set {item}: '{part}' is not a section")
            target = target[part]
        try:
            target[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            target[parts[-1]] = value
    return raw


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Data paths are relative to the config file's folder."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in DATA_PATH_KEYS:
        if isinstance(data.get(key), str) and data[key]:
            data[key] = str((base / data[key]).resolve())
    if isinstance(data.get("unlabelled"), str):  # one file
        data["unlabelled"] = [data["unlabelled"]]
    if isinstance(data.get("unlabelled"), list):
        data["unlabelled"] = [
            str((base / item).resolve()) if isinstance(item, str) else item for item in data["unlabelled"]
        ]
    embedding = raw.get("embedding")
    if isinstance(embedding, dict) and isinstance(embedding.get("pretrained"), str):
        # a path (not a named set such as glove-6b-50d) is relative to the config file, like the data
        value = embedding["pretrained"]
        if (base / value).exists() or any(mark in value for mark in ("/", "\\", ".")):
            embedding["pretrained"] = str((base / value).resolve())


def load_config(path: Path | str, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply overrides, resolve relative paths and fill every default."""
    path = Path(path)
    raw = apply_overrides(read_yaml(path), overrides or [])
    _resolve_paths(raw, path.resolve().parent)
    config = parse_config(raw, path)
    if config.output.run_dir is None:
        output = config.output.model_copy(update={"run_dir": Path("runs") / path.stem})
        config = config.model_copy(update={"output": output})
    if config.model.init is not None:  # a run directory, like output.run_dir: from the current folder, kept absolute
        model = config.model.model_copy(update={"init": config.model.init.absolute()})
        config = config.model_copy(update={"model": model})
    return config


def tokenizer_settings(config: Config) -> dict[str, Any]:
    """rnnclf.data.tokenizer.build_tokenizer's keyword arguments."""
    return config.tokenizer.model_dump()


def config_to_dict(config: Config) -> dict[str, Any]:
    return config.model_dump(mode="json")


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)
