"""rnnclf calibrate: fit a finished run's temperature (calibration.json), multi-label decision thresholds
(thresholds.json) and prediction sets with the out-of-domain reference (conformal.json) again, without training: on
its validation split, or on labelled texts it never trained on (--data). Runs trained before these existed get them.

The files replaced are kept in RUN/replaced/<time>/, so nothing a run had is lost.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rnnclf import files
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate, calibration_report, fit_calibration
from rnnclf.evaluation.conformal import METHODS
from rnnclf.evaluation.scores import probabilities
from rnnclf.evaluation.thresholds import choose_thresholds, thresholds_file_payload
from rnnclf.inference.ensemble import is_ensemble
from rnnclf.inference.evaluate import encoded_split, labelled_split
from rnnclf.inference.predictor import Predictor
from rnnclf.inference.trust import fit_trust, unknown_shares
from rnnclf.runs.directory import load_run
from rnnclf.training.session import is_complete


def recalibrate(
    path: Path, data: Path | None = None, method: str | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Fit the run's calibration files on its validation split or `data`, keep the old ones, write the new; returns
    what was fitted (for the command's summary)."""
    if method is not None and method not in METHODS:
        raise RnnclfError(f"--conformal {method}: choose one of {', '.join(METHODS)}")
    _check_run(path)
    predictor = Predictor(load_run(path))
    labelled, name = labelled_split(predictor.run, data, None if data else "valid", "or give --data FILE")
    fitted_on = str(data) if data is not None else "valid"
    encoded, targets = encoded_split(predictor, labelled)
    if len(targets) < 2:
        raise RnnclfError(f"{labelled.source}: {len(targets)} labelled text; calibration needs more")
    logits = predictor.model_logits(encoded)
    tc, labels, multi_label = predictor.run.config.train, predictor.labels, predictor.multi_label
    written: dict[str, Any] = {}
    temperature = None
    if tc.calibration != "none":
        temperature, written[files.CALIBRATION] = fit_calibration(logits, targets, labels, tc.threshold_min_support)
        written[files.CALIBRATION]["fitted_on"] = fitted_on
    calibrated = calibrate(logits, temperature)
    probs = probabilities(calibrated, multi_label)
    if multi_label:
        thresholds, info = choose_thresholds(
            probs, targets, labels, tc.thresholds, tc.threshold_min_support, tc.threshold_floor
        )
        written[files.THRESHOLDS] = thresholds_file_payload(labels, thresholds, info | {"fitted_on": fitted_on})
    chosen = method or tc.conformal
    written[files.CONFORMAL] = fit_trust(probs, targets, labels, chosen, unknown_shares(encoded), fitted_on)
    kept = _replace(path, written)
    figures = calibration_report(logits, temperature, targets, labels)
    return {
        "run": str(path),
        "fitted_on": fitted_on,
        "texts": len(targets),
        "temperature": figures["temperature"],
        "ece_before": figures["ece_before"],
        "ece": figures["ece"],
        "conformal": written[files.CONFORMAL]["method"],
        "written": sorted(written),
        "kept": str(kept) if kept else None,
    }


def _check_run(path: Path) -> None:
    if is_ensemble(path):
        raise RnnclfError(f"{path}: an ensemble is calibrated by rnnclf ensemble on its members' shared validation")
    if not path.is_dir() or not (path / files.CONFIG).exists():
        raise RnnclfError(f"{path}: not a run directory (no {files.CONFIG})")
    if (path / files.LANGUAGE_MODEL).exists():
        raise RnnclfError(f"{path}: a language model (rnnclf pretrain); only classifiers are calibrated")
    if not is_complete(path):
        raise RnnclfError(f"{path}: the run has not finished training; finish it with rnnclf train --resume {path}")


def _replace(path: Path, written: dict[str, Any]) -> Path | None:
    """Move the files about to be replaced into RUN/replaced/<time>/, then write the new ones (atomically)."""
    old = [name for name in written if (path / name).exists()]
    folder = None
    if old:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        folder = path / "replaced" / stamp
        folder.mkdir(parents=True)
        for name in old:
            shutil.copy2(path / name, folder / name)
    for name, payload in written.items():
        files.write_json(path / name, payload)
    return folder


def describe(summary: dict[str, Any]) -> str:
    """The command's line: what was fitted, where, and the calibration error before and after."""
    value = summary["temperature"]
    shown = (
        "no temperature"
        if value is None
        else (f"temperature {value:.3f}" if isinstance(value, float) else f"{len(value)} temperatures")
    )
    kept = f"; the previous files are in {summary['kept']}" if summary["kept"] else ""
    return (
        f"calibrated {summary['run']} on {summary['fitted_on']} ({summary['texts']:,} texts): {shown}, ECE "
        f"{summary['ece_before']:.4f} -> {summary['ece']:.4f}; prediction sets {summary['conformal']}; wrote "
        f"{', '.join(summary['written'])}{kept}"
    )
