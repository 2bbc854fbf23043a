"""rnnclf ensemble: finished runs that share labels and task, made into one directory that eval, predict, serve
and report take like a run (inference/ensemble.py reads it back).

The ensemble averages its members' calibrated probabilities. It is fitted only on texts none of its members
trained on: when every member has the same validation split (a valid file, or the same data.valid_seed), a
temperature is fitted on the mean there and, multi-label, thresholds are chosen there again (train.thresholds
of the first member). Members carved their validation split with their own seeds otherwise, and each member's
validation texts are training texts of the others: the ensemble then keeps the mean as it is (T = 1) and,
multi-label, takes each label's mean threshold over the members, and says so in ensemble.json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf import __version__
from rnnclf.data.corpus import load_corpus
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate, fit_calibration
from rnnclf.evaluation.scores import probabilities, scores
from rnnclf.evaluation.thresholds import choose_thresholds, thresholds_file_payload
from rnnclf.files import CALIBRATION, ENSEMBLE, ENV, FORMAT_VERSION, LABELS, METRICS, THRESHOLDS, write_json
from rnnclf.inference.ensemble import Ensemble, EnsemblePredictor, Member, is_ensemble, mean_logits
from rnnclf.inference.evaluate import encoded_split, labelled_split
from rnnclf.runs.directory import Run, load_run, run_digest
from rnnclf.training.session import check_run_dir, create_run_dir

KEPT = ("accuracy", "macro_f1", "weighted_f1", "micro_f1", "samples_f1", "loss")  # a member's figures kept


def make_ensemble(
    paths: list[Path], out: Path, log: Callable[[str], None] = print, device: str = "auto", workers: int = 1
) -> dict[str, Any]:
    """Check the members, score them and their mean on valid (when shared) and test, fit what can be fitted, and
    write the ensemble directory (whole or not at all). Returns its metrics.json."""
    check_run_dir(out)
    runs = member_runs(paths)
    first = runs[0]
    shared = shares_validation(runs)
    members = [Member(run.path, run_digest(run.path)) for run in runs]
    ensemble = Ensemble(out, first.config, first.labels, members, first.config.data.multi_label, shared)
    predictor = EnsemblePredictor(ensemble, device, workers)
    log(f"ensemble of {len(runs)} runs, {len(first.labels)} labels; validation {'shared' if shared else 'not shared'}")
    fitted = fit_on_valid(predictor, runs, log) if shared else keep_members(predictor, runs, log)
    reports = {name: score_split(predictor, runs, name) for name in ("valid", "test") if has_split(first, name, shared)}
    summary = {
        "kind": "ensemble",
        "members": [str(run.path) for run in runs],
        "metric": first.config.train.metric,
        **({"multi_label": True} if ensemble.multi_label else {}),
        "valid": reports.get("valid", {}).get("ensemble"),
        "test": reports.get("test", {}).get("ensemble"),
        "member_scores": {name: report["members"] for name, report in reports.items()},
        "train_seconds": sum(member_summary(run).get("train_seconds") or 0.0 for run in runs),
        "parameters": {
            "trainable": sum((member_summary(run).get("parameters") or {}).get("trainable") or 0 for run in runs)
        },
    }
    record = {
        "members": [{"path": str(m.path), "digest": m.digest} for m in members],
        "multi_label": ensemble.multi_label,
        "shared_valid": shared,
        "combine": "the mean of the members' calibrated probabilities" + (" per label" if ensemble.multi_label else ""),
        **fitted["record"],
    }

    def write(folder: Path) -> None:
        write_json(folder / ENSEMBLE, record)
        write_json(folder / LABELS, first.labels)
        for name, payload in fitted["files"].items():
            write_json(folder / name, payload)
        write_json(folder / ENV, environment())
        write_json(folder / METRICS, summary)

    create_run_dir(out, write)
    log(f"wrote {out}")
    return summary


def member_runs(paths: list[Path]) -> list[Run]:
    """The member runs, each finished, with the same task and labels; one line for the first that is not."""
    if len(paths) < 2:
        raise RnnclfError("an ensemble needs at least two runs")
    resolved = [Path(path).resolve() for path in paths]
    for position, path in enumerate(resolved):
        if path in resolved[:position]:
            raise RnnclfError(f"{paths[position]}: named twice; each member counts once")
        if is_ensemble(path):
            raise RnnclfError(f"{paths[position]}: an ensemble; name its members instead")
    runs = [load_run(path, weights=False) for path in resolved]
    first = runs[0]
    for given, run in zip(paths, runs, strict=True):
        if not (run.path / METRICS).exists():
            raise RnnclfError(f"{given}: training has not finished (no {METRICS}); finish it with --resume first")
        if run.config.data.multi_label != first.config.data.multi_label:
            kinds = {True: "multi-label", False: "single-label"}
            raise RnnclfError(
                f"{given}: {kinds[run.config.data.multi_label]}, but {paths[0]} is "
                f"{kinds[first.config.data.multi_label]}; members share their task"
            )
        if run.labels != first.labels:
            differ = sorted(set(run.labels) ^ set(first.labels))[:5] or ["(their order)"]
            raise RnnclfError(
                f"{given}: its labels differ from {paths[0]}'s ({', '.join(differ)}); members share labels"
            )
    return runs


def shares_validation(runs: list[Run]) -> bool:
    """Whether every member's validation split holds the same rows of the same file (so none trained on them)."""

    def rows(run: Run) -> tuple:
        valid = load_corpus(run.config.data, run.config.train.seed, run.labels).valid
        return str(valid.source), tuple(valid.rows)

    first = rows(runs[0])
    return all(rows(run) == first for run in runs[1:])


def has_split(run: Run, name: str, shared: bool) -> bool:
    if name == "valid":
        return shared
    try:
        return labelled_split(run, None, "test")[1] == "test"
    except RnnclfError:
        return False


def score_split(predictor: EnsemblePredictor, runs: list[Run], name: str) -> dict[str, Any]:
    """The ensemble's report on a split, and each member's headline figures on it."""
    labelled, _ = labelled_split(predictor.run, None, name)
    encoded, targets = encoded_split(predictor, labelled)
    member_logits = predictor.member_logits(encoded)
    logits = calibrate(mean_logits(member_logits, predictor.multi_label), predictor.temperature)
    report = scores(logits, targets, predictor.labels, predictor.thresholds)
    members = []
    for run, member, own in zip(runs, predictor.members, member_logits, strict=True):
        figures = scores(own, targets, predictor.labels, member.thresholds)
        members.append({"path": str(run.path), **{key: figures[key] for key in KEPT if key in figures}})
    return {"ensemble": report, "members": members}


def fit_on_valid(predictor: EnsemblePredictor, runs: list[Run], log: Callable[[str], None]) -> dict[str, Any]:
    """The temperature of the mean, fitted on the shared validation split, and (multi-label) its thresholds."""
    ensemble, train = predictor.run, runs[0].config.train
    labelled, _ = labelled_split(ensemble, None, "valid")
    encoded, targets = encoded_split(predictor, labelled)
    logits = predictor.model_logits(encoded)
    temperature, calibration = fit_calibration(logits, targets, ensemble.labels, train.threshold_min_support)
    files: dict[str, Any] = {CALIBRATION: calibration}
    record: dict[str, Any] = {"calibration": f"a temperature fitted on the {len(targets):,} shared validation texts"}
    predictor.temperature = ensemble.temperature = temperature
    if ensemble.multi_label:
        calibrated = probabilities(calibrate(logits, temperature), True)
        thresholds, info = choose_thresholds(
            calibrated, targets, ensemble.labels, train.thresholds, train.threshold_min_support, train.threshold_floor
        )
        predictor.thresholds = ensemble.thresholds = thresholds
        files[THRESHOLDS] = thresholds_file_payload(ensemble.labels, thresholds, info)
        record["thresholds"] = f"chosen on the shared validation split: {info['description']}"
        log(f"thresholds: {info['description']}")
    return {"files": files, "record": record}


def keep_members(predictor: EnsemblePredictor, runs: list[Run], log: Callable[[str], None]) -> dict[str, Any]:
    """No validation split free of every member's training texts: no temperature; multi-label thresholds the
    members' mean."""
    ensemble = predictor.run
    why = (
        "the members' validation splits differ (each carved with its own train.seed; fix data.valid_seed to share one)"
    )
    record: dict[str, Any] = {"calibration": f"none: {why}"}
    files: dict[str, Any] = {}
    log(
        f"rnnclf: warning: {why}: the mean is not calibrated again"
        + (", thresholds are the members' mean" if ensemble.multi_label else "")
    )
    if ensemble.multi_label:
        thresholds = np.mean([run.thresholds for run in runs], axis=0)
        predictor.thresholds = ensemble.thresholds = thresholds
        info = {"method": "members_mean", "description": "each label's mean threshold over the members"}
        files[THRESHOLDS] = thresholds_file_payload(ensemble.labels, thresholds, info)
        record["thresholds"] = f"each label's mean over the members: {why}"
    return {"files": files, "record": record}


def member_summary(run: Run) -> dict[str, Any]:
    try:
        return json.loads((run.path / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def environment() -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "rnnclf": __version__,
        "command": sys.argv,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
