"""Cross-validation (rnnclf cv): the training split cut into K stratified folds (data.folds), and K ordinary runs,
each holding one fold out as its test split (data.fold) and training on the others (validation carved from them, or
the config's own valid file). Repeated with other seeds, each seed cuts its own folds and trains with its own
train.seed.

The folder holds cv.json (what was asked: the config, folds, seeds, the training file's digest), one run per seed and
fold (seed<S>/fold<K>/, resumable like any run), each fold's out-of-fold probabilities (seed<S>/fold<K>.oof.npz) and,
once every fold is done, the summary (cv_summary.py). A rerun of the same command continues where the last one
stopped: finished folds are kept, a started one is resumed from its last saved state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf import files
from rnnclf.config.loading import config_to_dict, load_config
from rnnclf.config.schema import Config
from rnnclf.data.corpus import check_folds, fold_ids, label_names, read_named_split
from rnnclf.errors import RnnclfError
from rnnclf.training.session import is_complete

CV_FILE, TIMES = "cv.json", "times.jsonl"

# trains one fold: (run directory, the --set overrides of a new run, or None to resume the directory)
TrainFold = Callable[[Path, list[str] | None], None]


@dataclass
class Plan:
    """What a cross-validation does: the resolved config (without folds), its file and overrides, the folds, the
    seeds and the output folder."""

    config: Config
    config_path: Path
    overrides: list[str]
    folds: int
    seeds: list[int]
    out: Path

    def fold_dir(self, seed: int, fold: int) -> Path:
        return self.out / f"seed{seed}" / f"fold{fold}"

    def fold_overrides(self, seed: int, fold: int) -> list[str]:
        folds = [f"data.folds={self.folds}", f"data.fold={fold}", f"data.fold_seed={seed}", f"train.seed={seed}"]
        return [*self.overrides, *folds, f"output.run_dir={self.fold_dir(seed, fold)}"]


def plan_cv(config_path: Path, overrides: list[str], folds: int, seeds: list[int] | None, out: Path) -> Plan:
    """Every check before any work: K of 2 or more and no more than the smallest class, a config without folds of its
    own, and an output folder that is new or holds this same cross-validation."""
    if folds < 2:
        raise RnnclfError(f"--folds {folds}: cross-validation needs at least 2 folds")
    config = load_config(config_path, overrides)
    if config.data.folds is not None:
        raise RnnclfError(f"{config_path}: data.folds is set by rnnclf cv for each fold's run; remove it")
    chosen = list(dict.fromkeys(seeds)) if seeds else [config.train.seed]
    train = read_named_split(config.data, "train")
    check_folds(train, folds, config.data.multi_label)
    plan = Plan(config, config_path, list(overrides), folds, chosen, out)
    check_out(plan, identity(plan))
    return plan


def identity(plan: Plan) -> dict[str, Any]:
    """What makes two cross-validations the same: the resolved config (but where runs go), folds, seeds, and the
    bytes of the training file."""
    config = config_to_dict(plan.config)
    config["output"].pop("run_dir", None)
    return {"config": config, "folds": plan.folds, "seeds": plan.seeds, "train_digest": train_digest(plan.config)}


def train_digest(config: Config) -> str:
    """sha256 of the training split's file (a built-in corpus: its cached file)."""
    if config.data.dataset is not None:
        from rnnclf.data.builtin import fetch

        path = fetch(config.data.dataset)["train"]
    else:
        path = config.data.train
    return files.sha256_of(path)


def check_out(plan: Plan, wanted: dict[str, Any]) -> None:
    """A new folder, or one holding this same cross-validation (continued); anything else is refused."""
    out = plan.out
    if out.exists() and not out.is_dir():
        raise RnnclfError(f"--out {out}: is a file; give a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    record = read_record(out)
    wanted = wanted | {"config": known_keys(wanted["config"], record["config"])}
    differs = [key for key in ("config", "folds", "seeds", "train_digest") if record.get(key) != wanted[key]]
    if differs:
        what = {"config": "another config", "folds": "other --folds", "seeds": "other --seeds"}
        reason = what.get(differs[0], "other training data")
        raise RnnclfError(
            f"--out {out}: holds a cross-validation of {reason} ({CV_FILE}); choose another --out, or rerun it "
            "with its own config and options to continue it"
        )


def known_keys(config: dict[str, Any], recorded: Any) -> dict[str, Any]:
    """The config without the keys a cross-validation begun by an older rnnclf did not have, where they keep their
    default: an upgrade between two runs of the same command continues it."""
    from rnnclf.config.schema import Config

    if not isinstance(recorded, dict):
        return config
    kept = {}
    for section, values in config.items():
        old = recorded.get(section)
        if not isinstance(values, dict) or not isinstance(old, dict):
            kept[section] = values
            continue
        model = Config.model_fields[section].annotation
        defaults = {name: field.get_default() for name, field in getattr(model, "model_fields", {}).items()}
        kept[section] = {
            key: value for key, value in values.items() if key in old or value != _plain(defaults.get(key, value))
        }
    return kept


def _plain(value: Any) -> Any:
    """A default as config_to_dict writes it (paths and enums as strings)."""
    return str(value) if isinstance(value, Path) else value


def read_record(out: Path) -> dict[str, Any]:
    """A cross-validation folder's cv.json (one line if the folder is not one)."""
    try:
        record = json.loads((out / CV_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RnnclfError(f"{out}: not a cross-validation folder (no {CV_FILE}; rnnclf cv writes one)") from None
    except (OSError, ValueError) as exc:
        raise RnnclfError(f"{out / CV_FILE}: unreadable ({exc})") from None
    if not isinstance(record, dict) or not {"config", "folds", "seeds", "labels"} <= set(record):
        raise RnnclfError(f"{out / CV_FILE}: not what rnnclf cv writes; the folder is damaged")
    return record


def run_cv(plan: Plan, train_fold: TrainFold, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every seed's every fold, in order, skipping those already done; returns each fold's times."""
    if not (plan.out / CV_FILE).exists():
        train = read_named_split(plan.config.data, "train")
        labels = sorted(label_names(train, plan.config.data.multi_label))
        files.write_json(plan.out / CV_FILE, identity(plan) | {"labels": labels, "texts": len(train)})
    times = []
    for seed in plan.seeds:
        for fold in range(plan.folds):
            times.append(run_fold(plan, seed, fold, train_fold, log))
    return times


def run_fold(plan: Plan, seed: int, fold: int, train_fold: TrainFold, log: Callable[[str], None]) -> dict[str, Any]:
    """One fold: trained (or resumed) unless finished, then its out-of-fold probabilities; with its times: the
    whole fold's, and cv's own beyond the training (written to times.jsonl)."""
    run_dir, oof = plan.fold_dir(seed, fold), oof_file(plan.out, seed, fold)
    started = time.perf_counter()
    trained = 0.0
    if not is_complete(run_dir):
        log(f"cv: seed {seed}, fold {fold + 1} of {plan.folds}: {run_dir}")
        resuming = run_dir.exists() and any(run_dir.iterdir())
        train_fold(run_dir, None if resuming else plan.fold_overrides(seed, fold))
        trained = time.perf_counter() - started
    if not oof.exists():
        write_oof(run_dir, oof)
    total = time.perf_counter() - started
    record = {"seed": seed, "fold": fold, "seconds": total, "training_seconds": trained, "overhead": total - trained}
    if trained:  # a fold finished before this run has no times of this run
        files.append_line(plan.out / TIMES, record)
    return record


def oof_file(out: Path, seed: int, fold: int) -> Path:
    return out / f"seed{seed}" / f"fold{fold}.oof.npz"


def write_oof(run_dir: Path, path: Path) -> None:
    """The fold's run's calibrated probabilities of its held-out fold (its test split), with each text's position
    in the training split."""
    from rnnclf.inference.ensemble import load_predictor
    from rnnclf.inference.evaluate import labelled_split

    predictor = load_predictor(run_dir)
    held, _ = labelled_split(predictor.run, None, "test")
    data = predictor.run.config.data
    train = read_named_split(data, "train")
    positions = np.flatnonzero(fold_ids(train, data.folds, data.fold_seed, data.multi_label) == data.fold)
    if len(positions) != len(held):
        raise RnnclfError(f"{run_dir}: its test split is not fold {data.fold} of the training split; delete the run")
    probs = predictor.predict_proba(list(held.texts)).astype(np.float32)
    buffer = _npz_bytes(positions=positions, probs=probs, labels=np.array(predictor.labels))
    files.write_atomic(path, buffer)


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
