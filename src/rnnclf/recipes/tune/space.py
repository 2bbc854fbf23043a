"""The search space of `rnnclf tune`: config keys with a range or a list of choices, read from YAML and checked
against the config before any trial runs; and the default space, sized by the data.

A space file maps `section.key` (the names --set takes) to a range or a list:

    train.lr: {low: 0.0003, high: 0.01, log: true}   # a float key: a float range (log: sampled on a log scale)
    model.hidden_size: {low: 64, high: 512, step: 64}  # an int key: an int range (step, or log)
    model.encoder: [lstm, gru]                          # any key: the choices

Imports neither torch nor optuna (a space is checked before either loads).
"""

from __future__ import annotations

import copy
import difflib
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnclf.config.loading import config_to_dict, parse_config, read_yaml
from rnnclf.config.rules import unsearchable
from rnnclf.config.schema import SECTIONS, Config
from rnnclf.errors import RnnclfError
from rnnclf.models.embeddings import NAMED_DIMS, installed_named_sets

RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class Dimension:
    """One searched key: a float or int range (`low`..`high`, on a log scale or in steps), or `choices`."""

    key: str
    kind: str  # float, int or categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial proposes for this key."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if not self.low <= value <= self.high or (self.kind == "int" and value != int(value)):
            return False
        return self.step is None or _on_grid(value - self.low, self.step)

    def to_yaml(self) -> Any:
        if self.kind == "categorical":
            return list(self.choices)
        spec: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            spec["log"] = True
        if self.step is not None:
            spec["step"] = self.step
        return spec

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.key} in {list(self.choices)}"
        scale = " (log)" if self.log else f" (step {self.step:g})" if self.step is not None else ""
        return f"{self.key} {self.low:g}..{self.high:g}{scale}"


def read_space(path: Path, base: Config) -> list[Dimension]:
    """A space file, every key, range and choice checked against the config; any mistake is one line."""
    raw = read_yaml(path, "search space file", "a mapping of config keys (train.lr: {low: 0.0003, high: 0.01})")
    return check_space(raw, base, str(path))


def check_space(raw: dict[str, Any], base: Config, source: str) -> list[Dimension]:
    dimensions = [_dimension(str(key), spec, source) for key, spec in raw.items()]
    if not dimensions:
        raise RnnclfError(f"{source}: the search space is empty; name at least one key")
    for dimension in dimensions:
        _check_values(dimension, dimensions, base, source)
    return dimensions


def space_to_yaml(space: list[Dimension]) -> dict[str, Any]:
    return {dimension.key: dimension.to_yaml() for dimension in space}


def default_space(base: Config, train_size: int, most_epochs: int | None = None) -> list[Dimension]:
    """What matters most for a recurrent classifier, sized by the training split: smaller models, smaller batches
    and more epochs for small data; at most `most_epochs` (what a short budget allows per trial); pretrained
    word vectors when a named set is installed. The config's own values are always inside (trial 0 is the config
    as given)."""
    model, tc = base.model, base.train
    small, large = train_size < 10_000, train_size > 100_000
    hidden = [64, 128, 256] if small else [256, 512, 1024] if large else [128, 256, 512]
    batch = [16, 32, 64] if small else [64, 128, 256] if large else [32, 64, 128]
    low_epochs, high_epochs = (4, 15) if small else (2, 6) if large else (3, 10)
    high_epochs = max(low_epochs + 1, min(high_epochs, most_epochs or high_epochs))
    encoders = ["lstm", "gru"] + ([model.encoder] if model.encoder not in ("lstm", "gru") else [])
    poolings = ["max", "mean", "attention"] + (["last"] if model.encoder != "bag" else [])
    space = [
        _widened("train.lr", "float", 3e-4, 1e-2, tc.lr, log=True),
        _categorical("model.hidden_size", hidden, model.hidden_size),
        _widened("embedding.dropout", "float", 0.0, 0.5, base.embedding.dropout),
        _widened("model.head_dropout", "float", 0.0, 0.5, model.head_dropout),
        _categorical("model.encoder", encoders, model.encoder),
        _categorical("model.pooling", poolings, model.pooling),
        _categorical("train.batch_size", batch, tc.batch_size),
        _widened("train.label_smoothing", "float", 0.0, 0.2, tc.label_smoothing),
        _widened("train.epochs", "int", low_epochs, high_epochs, tc.epochs),
    ]
    vectors = installed_named_sets()
    if vectors and base.tokenizer.kind == "word" and base.embedding.pretrained in (None, *vectors):
        space.append(_categorical("embedding.pretrained", [None, *vectors], base.embedding.pretrained))
    return space


def apply_values(base: Config, values: dict[str, Any], source: str) -> Config:
    """The base config with each `section.key` set to its value, validated."""
    raw = copy.deepcopy(config_to_dict(base))
    for key, value in values.items():
        section, name = key.split(".", 1)
        raw[section][name] = value
    vectors = values.get("embedding.pretrained")
    if vectors in NAMED_DIMS and "embedding.dim" not in values:  # the embedding takes the vectors' size
        raw["embedding"]["dim"] = NAMED_DIMS[vectors]
    return parse_config(raw, source)


def base_values(base: Config, space: list[Dimension]) -> dict[str, Any]:
    """The config's own value of each searched key that lies inside the space (trial 0: the config as given)."""
    values = {d.key: getattr(getattr(base, d.key.split(".")[0]), d.key.split(".")[1]) for d in space}
    return {key: value for key, value in values.items() if next(d for d in space if d.key == key).contains(value)}


# reading one key


def _dimension(key: str, spec: Any, source: str) -> Dimension:
    kind = _key_kind(key, source)
    where = f"{source}: {key}"
    if isinstance(spec, list):
        if not spec:
            raise RnnclfError(f"{where}: the list of choices is empty")
        if any(isinstance(choice, list | dict) for choice in spec):
            raise RnnclfError(f"{where}: a choice must be a single value (a number, a string, true / false or null)")
        if len(set(map(repr, spec))) < len(spec):
            raise RnnclfError(f"{where}: a choice is listed twice")
        return Dimension(key, "categorical", choices=tuple(spec))
    if not isinstance(spec, dict):
        raise RnnclfError(f"{where}: expected a range {{low: ..., high: ...}} or a list of choices, got {spec!r}")
    unknown = sorted(set(spec) - RANGE_KEYS)
    if unknown:
        hint = difflib.get_close_matches(str(unknown[0]), sorted(RANGE_KEYS), n=1)
        raise RnnclfError(
            f"{where}: unknown range key '{unknown[0]}'"
            + (f" (did you mean '{hint[0]}'?)" if hint else f"; a range takes {', '.join(sorted(RANGE_KEYS))}")
        )
    if kind == "categorical":
        raise RnnclfError(f"{where}: this key is not a number; give a list of choices instead of a range")
    if "low" not in spec or "high" not in spec:
        raise RnnclfError(f"{where}: a range needs both low and high")
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    for name, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)):
            raise RnnclfError(f"{where}: {name} must be a number, got {value!r}")
        if kind == "int" and value is not None and value != int(value):
            raise RnnclfError(f"{where}: {key} takes whole numbers; {name} is {value!r}")
    if not isinstance(log, bool):
        raise RnnclfError(f"{where}: log must be true or false, got {log!r}")
    if low >= high:
        what = "empty" if low == high else "inverted"
        raise RnnclfError(f"{where}: the range is {what} (low {low!r}, high {high!r}); low must be below high")
    if log and low <= 0:
        raise RnnclfError(f"{where}: a log range needs low above 0, got {low!r}")
    if step is not None and (log or step <= 0 or not _on_grid(high - low, step)):
        problem = (
            "step and log do not go together" if log else f"high - low ({high - low:g}) must be a whole number of steps"
        )
        raise RnnclfError(f"{where}: {problem}")
    return Dimension(key, kind, low=low, high=high, log=log, step=step)


def _key_kind(key: str, source: str) -> str:
    """float, int or categorical, from the config field's type; unknown and fixed keys are mistakes."""
    section_name, _, name = key.partition(".")
    section = SECTIONS.get(section_name)
    if section is None or name not in section.model_fields:
        known = [f"{s}.{k}" for s, model in SECTIONS.items() for k in model.model_fields]
        hint = difflib.get_close_matches(key, known, n=1)
        raise RnnclfError(
            f"{source}: unknown key '{key}'"
            + (f" (did you mean '{hint[0]}'?)" if hint else "; keys are section.key, as for --set (train.lr)")
        )
    why = unsearchable(key)
    if why:
        raise RnnclfError(f"{source}: {key} cannot be searched: {why}")
    annotation = section.model_fields[name].annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    plain = args[0] if isinstance(annotation, types.UnionType) and len(args) == 1 else annotation
    return "float" if plain is float else "int" if plain is int else "categorical"


def _check_values(dimension: Dimension, space: list[Dimension], base: Config, source: str) -> None:
    """Each choice (each end of a range) must make a valid config, with the other searched keys as the config has
    them or at one of their own values (a choice that only works beside another searched value is fine)."""
    values = list(dimension.choices) if dimension.kind == "categorical" else [dimension.low, dimension.high]
    others = [d for d in space if d.key != dimension.key]
    for value in values:
        error = _first_error(base, {dimension.key: value}, source)
        if error is None:
            continue
        if error.startswith(f"{source}: {dimension.key}:") or not any(
            _first_error(base, {dimension.key: value, other.key: candidate}, source) is None
            for other in others
            for candidate in (other.choices if other.kind == "categorical" else (other.low, other.high))
        ):
            shown = "choice" if dimension.kind == "categorical" else "bound"
            raise RnnclfError(
                f"{source}: {dimension.key}: the {shown} {value!r} fails the config: {_strip(error, source)}"
            )


def _first_error(base: Config, values: dict[str, Any], source: str) -> str | None:
    try:
        apply_values(base, values, source)
    except RnnclfError as exc:
        return str(exc)
    return None


def _strip(error: str, source: str) -> str:
    return error.removeprefix(f"{source}: ")


def _on_grid(distance: float, step: float) -> bool:
    return step > 0 and abs(distance / step - round(distance / step)) < 1e-9


def _categorical(key: str, choices: list[Any], current: Any) -> Dimension:
    if current is not None and current not in choices:
        choices = (
            sorted([*choices, current]) if all(isinstance(c, int | float) for c in choices) else [*choices, current]
        )
    return Dimension(key, "categorical", choices=tuple(choices))


def _widened(key: str, kind: str, low: float, high: float, current: float, log: bool = False) -> Dimension:
    """A range stretched to hold the config's own value."""
    if current is not None and not (log and current <= 0):
        low, high = min(low, current), max(high, current)
    return Dimension(key, kind, low=low, high=high, log=log)
