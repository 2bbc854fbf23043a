"""Calibration of finished runs, measured as training now does it: the temperature fitted on each run's
validation split (rnnclf.evaluation.calibration.fit_calibration, the code train runs after its last epoch), then the test
split's ECE (15 bins) and Brier score before and after it. For multi-label runs the thresholds are chosen again
on the calibrated validation probabilities (the run's train.thresholds rule), and test micro / macro F1 are shown
at the run's own thresholds and at the new ones.

Runs trained before calibration existed have no calibration.json; this reads only their weights and data, and
writes nothing into them.

    python scripts/calibration_results.py results/runs/r52-seed0 ... --out results/calibration
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from rnnclf.device.cores import available_cores
from rnnclf.device.threads import use_cpu_threads
from rnnclf.evaluation.calibration import calibrate, calibration_report, fit_calibration
from rnnclf.evaluation.scores import probabilities, scores
from rnnclf.evaluation.thresholds import choose_thresholds
from rnnclf.inference.evaluate import encoded_split, labelled_split
from rnnclf.inference.predictor import Predictor
from rnnclf.runs.directory import load_run


def measure(run_path: Path) -> dict:
    run = load_run(run_path)
    predictor = Predictor(run, "cpu", workers=available_cores())
    logits, targets = {}, {}
    for split in ("valid", "test"):
        labelled, _ = labelled_split(run, None, split)
        encoded, targets[split] = encoded_split(predictor, labelled)
        logits[split] = predictor.model_logits(encoded)  # the model's own logits: any calibration.json is ignored
    tc = run.config.train
    temperature, payload = fit_calibration(logits["valid"], targets["valid"], run.labels, tc.threshold_min_support)
    test = calibration_report(logits["test"], temperature, targets["test"], run.labels)
    row = {
        "run": str(run_path),
        "multi_label": run.config.data.multi_label,
        "valid_texts": len(targets["valid"]),
        "test_texts": len(targets["test"]),
        "temperature": payload["temperature"],
        "valid": payload["valid"],
        "test": {key: value for key, value in test.items() if not key.startswith("reliability")},
    }
    if run.config.data.multi_label:
        valid_probabilities = probabilities(calibrate(logits["valid"], temperature), True)
        chosen, _ = choose_thresholds(
            valid_probabilities,
            targets["valid"],
            run.labels,
            tc.thresholds,
            tc.threshold_min_support,
            tc.threshold_floor,
        )
        before = scores(logits["test"], targets["test"], run.labels, run.thresholds)
        after = scores(calibrate(logits["test"], temperature), targets["test"], run.labels, chosen)
        row["test_f1"] = {
            "micro_before": before["micro_f1"],
            "micro_after": after["micro_f1"],
            "macro_before": before["macro_f1"],
            "macro_after": after["macro_f1"],
        }
    return row


def markdown(rows: list[dict], seconds: float) -> str:
    lines = [
        "# Calibration of finished runs (temperature fitted on validation, judged on test)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'} ({available_cores()} cores, "
        f"CPU) in {seconds:.0f} s by `python scripts/calibration_results.py {' '.join(r['run'] for r in rows)}`.",
        "ECE: 15 equal-width bins (single-label: of the top class's probability; multi-label: every text and label).",
        "",
        "| run | temperature | valid ECE before → after | test ECE before → after | test Brier before → after |"
        " test micro / macro F1 before → after |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        value = row["temperature"]
        shown = (
            f"{value:.3f}"
            if isinstance(value, float)
            else f"{len(value)} labels, median {np.median(list(value.values())):.3f}"
        )
        f1 = row.get("test_f1")
        f1_text = (
            f"{f1['micro_before']:.4f} / {f1['macro_before']:.4f} → {f1['micro_after']:.4f} / {f1['macro_after']:.4f}"
            if f1
            else "unchanged (argmax)"
        )
        valid, test = row["valid"], row["test"]
        lines.append(
            f"| {Path(row['run']).name} | {shown} | {valid['ece_before']:.4f} → {valid['ece']:.4f} | "
            f"{test['ece_before']:.4f} → {test['ece']:.4f} | {test['brier_before']:.4f} → {test['brier']:.4f} | {f1_text} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("results/calibration"))
    args = parser.parse_args()
    use_cpu_threads(1)
    start = time.perf_counter()
    rows = []
    for run in args.runs:
        rows.append(measure(run))
        print(json.dumps({k: rows[-1][k] for k in ("run", "test")}, default=str)[:300], flush=True)
    seconds = time.perf_counter() - start
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(rows, seconds))
    print(markdown(rows, seconds))


if __name__ == "__main__":
    main()
