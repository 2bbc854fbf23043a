"""What a finished cross-validation (cv.py) writes: every fold's test scores with their mean and standard deviation
(summary.json, summary.md, cv.png), every training text's out-of-fold probabilities in one file (oof.jsonl), and the
likely label errors found from them (label_errors.json, check/label_errors.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf import files
from rnnclf.config.schema import Config
from rnnclf.data.corpus import label_names, label_targets, read_named_split
from rnnclf.data.readers import Split
from rnnclf.errors import RnnclfError
from rnnclf.recipes.cv import CV_FILE, TIMES, Plan, oof_file, read_record

SUMMARY, OOF, LABEL_ERRORS, FIGURE = "summary.json", "oof.jsonl", "label_errors.json", "cv.png"
SINGLE = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "loss")
MULTI = ("micro_f1", "macro_f1", "samples_f1", "weighted_f1", "accuracy", "hamming_loss", "loss")


def summarize(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    """summary.json / .md, oof.jsonl and label_errors.json of a cross-validation whose folds are all done."""
    multi_label = plan.config.data.multi_label
    names = MULTI if multi_label else SINGLE
    rows = [fold_row(plan, seed, fold, names) for seed in plan.seeds for fold in range(plan.folds)]
    metrics = [name for name in (*names, "ece", "train_seconds") if all(name in row for row in rows)]
    summary = {
        "folds": plan.folds,
        "seeds": plan.seeds,
        "config": str(plan.config_path),
        "multi_label": multi_label,
        "metrics": metrics,
        "runs": rows,
        "mean": {name: float(np.mean([row[name] for row in rows])) for name in metrics},
        "std": {name: float(np.std([row[name] for row in rows], ddof=1)) for name in metrics},
    }
    baseline = [row["linear_baseline"] for row in rows if "linear_baseline" in row]
    if baseline:  # the runs that fitted one (a run skips it when it would cost over a tenth of its training)
        keys = [key for key in baseline[0] if all(key in entry for entry in baseline)]
        summary["linear_baseline"] = {
            "runs": len(baseline),
            "mean": {key: float(np.mean([entry[key] for entry in baseline])) for key in keys},
            "std": {
                key: float(np.std([entry[key] for entry in baseline], ddof=1)) if len(baseline) > 1 else 0.0
                for key in keys
            },
        }
    summary["times"] = fold_times(plan.out)
    train, labels = read_named_split(plan.config.data, "train"), read_record(plan.out)["labels"]
    probs = out_of_fold(plan, len(train), labels)
    summary["errors"] = write_label_errors(plan.out, train, probs, labels, multi_label)
    write_oof(plan.out, train, probs, labels, plan)
    files.write_json(plan.out / SUMMARY, summary)
    files.write_atomic(plan.out / "summary.md", format_summary(summary).encode("utf-8"))
    from rnnclf.views.plots import save_cv_figure

    save_cv_figure(summary, plan.out / FIGURE, log)
    return summary


def fold_row(plan: Plan, seed: int, fold: int, names: tuple[str, ...]) -> dict[str, Any]:
    """One fold's run: its test (held-out fold) scores, calibration error, training time and linear baseline."""
    run = plan.fold_dir(seed, fold)
    summary = json.loads((run / files.METRICS).read_text(encoding="utf-8"))
    test = summary.get("test") or {}
    row = {"seed": seed, "fold": fold, "run": str(run), "best_epoch": summary.get("best_epoch")}
    row |= {name: float(test[name]) for name in names if isinstance(test.get(name), int | float)}
    if isinstance(test.get("calibration"), dict) and "ece" in test["calibration"]:
        row["ece"] = float(test["calibration"]["ece"])
    row["train_seconds"] = float(summary.get("train_seconds", 0.0))
    baseline = (summary.get("linear_baseline") or {}).get("test")
    if isinstance(baseline, dict):
        row["linear_baseline"] = {key: float(value) for key, value in baseline.items()}
    return row


def fold_times(out: Path) -> list[dict[str, Any]]:
    """times.jsonl: each fold's time in cv and cv's own share of it (the last record of each fold)."""
    path = out / TIMES
    if not path.exists():
        return []
    latest = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        latest[(record["seed"], record["fold"])] = record
    return list(latest.values())


def out_of_fold(plan: Plan, texts: int, labels: list[str]) -> np.ndarray:
    """Each training text's probabilities from the run that did not train on it (several seeds: their mean), in
    the order of `labels`; a multi-label fold whose training part lacked a label gives it probability 0."""
    total, seen = np.zeros((texts, len(labels))), np.zeros(texts, dtype=np.int64)
    column = {label: i for i, label in enumerate(labels)}
    for seed in plan.seeds:
        for fold in range(plan.folds):
            with np.load(oof_file(plan.out, seed, fold)) as saved:
                positions, probs = saved["positions"], saved["probs"].astype(np.float64)
                columns = [column[str(label)] for label in saved["labels"]]
            total[np.ix_(positions, columns)] += probs
            seen[positions] += 1
    if (seen != len(plan.seeds)).any():
        raise RnnclfError(f"{plan.out}: the folds' probabilities do not cover the training split once per seed")
    return total / len(plan.seeds)


def write_oof(out: Path, train: Split, probs: np.ndarray, labels: list[str], plan: Plan) -> None:
    """oof.jsonl: per training text, its line, given label(s), fold per seed and out-of-fold probabilities."""
    data = plan.config.data
    from rnnclf.data.corpus import fold_ids

    folds = np.stack([fold_ids(train, plan.folds, seed, data.multi_label) for seed in plan.seeds], axis=1)
    lines = []
    for index, label in enumerate(train.labels):
        record = {
            "line": int(train.rows[index]) if len(train.rows) else index + 1,
            "label": list(label) if data.multi_label else label,
            "folds": folds[index].tolist(),
            "probs": [round(float(p), 6) for p in probs[index]],
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    header = json.dumps({"file": train.source, "labels": labels, "seeds": plan.seeds}, ensure_ascii=False)
    files.write_atomic(out / OOF, ("\n".join([header, *lines]) + "\n").encode("utf-8"))


def read_oof(out: Path) -> tuple[dict[str, Any], np.ndarray, list[int]]:
    """oof.jsonl back: its header (file, labels, seeds), the probabilities and each text's line."""
    try:
        lines = (out / OOF).read_text(encoding="utf-8").splitlines()
        header, records = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
        probs = np.array([record["probs"] for record in records], dtype=np.float64)
        return header, probs, [int(record["line"]) for record in records]
    except FileNotFoundError:
        raise RnnclfError(f"{out}: no {OOF}; the cross-validation has not finished (rerun rnnclf cv)") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise RnnclfError(f"{out / OOF}: unreadable ({exc}); the folder is damaged") from None


def label_errors(train: Split, probs: np.ndarray, labels: list[str], multi_label: bool) -> list[dict[str, Any]]:
    """The likely label errors among the training rows, most likely first, with file, line and suggestion."""
    from rnnclf.check.label_errors import find_label_errors

    targets = label_targets(train.labels, labels, multi_label)
    found = find_label_errors(targets, probs)
    source = str(train.source)
    rows = []
    for rank, error in enumerate(found, start=1):
        line = int(train.rows[error.index]) if len(train.rows) else error.index + 1
        rows.append(
            {
                "rank": rank,
                "where": f"{source}:{line}",
                "line": line,
                "given": [labels[i] for i in error.given],
                "suggested": [labels[i] for i in error.suggested],
                "suspect": [labels[i] for i in error.suspect],
                "score": round(float(error.score), 6),
            }
        )
    return rows


def write_label_errors(
    out: Path, train: Split, probs: np.ndarray, labels: list[str], multi_label: bool
) -> dict[str, Any]:
    rows = label_errors(train, probs, labels, multi_label)
    files.write_json(out / LABEL_ERRORS, {"file": str(train.source), "texts": len(train), "errors": rows})
    return {"found": len(rows), "texts": len(train), "file": LABEL_ERRORS}


def format_summary(summary: dict[str, Any]) -> str:
    """summary.md: one row per fold, then the mean ± standard deviation (and the linear baseline's)."""
    metrics = summary["metrics"]
    head = "| seed | fold | " + " | ".join(metrics) + " |"
    lines = [f"# Cross-validation: {summary['config']}, {summary['folds']} folds, seeds {summary['seeds']}", ""]
    lines += [head, "|" + "---|" * (len(metrics) + 2)]
    for row in summary["runs"]:
        lines.append(f"| {row['seed']} | {row['fold']} | " + " | ".join(_cell(row[name]) for name in metrics) + " |")
    spread = [f"{_cell(summary['mean'][name])} ± {_cell(summary['std'][name])}" for name in metrics]
    lines.append("| all | mean ± std | " + " | ".join(spread) + " |")
    baseline = summary.get("linear_baseline")
    if baseline:
        cells = [
            f"{_cell(baseline['mean'][name])} ± {_cell(baseline['std'][name])}" if name in baseline["mean"] else ""
            for name in metrics
        ]
        runs = f"mean ± std of {baseline['runs']} of {len(summary['runs'])} runs"
        lines.append(f"| linear baseline | {runs} | " + " | ".join(cells) + " |")
    errors = summary["errors"]
    lines += ["", f"Likely label errors: {errors['found']} of {errors['texts']:,} training texts ({errors['file']})."]
    return "\n".join(lines) + "\n"


def _cell(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4f}"


def label_error_finding(config: Config, cv_dir: Path, shown: int = 20) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """data check's finding of likely label errors from a cross-validation of this config's training split (its
    `shown` most likely, with their texts), and every one of them."""
    from rnnclf.recipes.cv import train_digest

    record = read_record(cv_dir)
    header, probs, lines = read_oof(cv_dir)
    train = read_named_split(config.data, "train")
    labels = sorted(label_names(train, config.data.multi_label))
    same = record.get("train_digest") == train_digest(config) and header.get("labels") == labels
    if not same or len(lines) != len(train):
        raise RnnclfError(
            f"--label-errors {cv_dir}: a cross-validation of other training data than this config's ({CV_FILE}); "
            f"run rnnclf cv with this config first"
        )
    rows = label_errors(train, probs, labels, config.data.multi_label)
    texts = dict.fromkeys(row["line"] for row in rows[:shown])
    for line, text in zip(train.rows if len(train.rows) else range(1, len(train) + 1), train.texts, strict=True):
        if line in texts:
            texts[line] = text[:160]
    examples = [
        {"file": str(train.source), "line": row["line"], "text": texts[row["line"]], "label": ", ".join(row["given"])}
        | {"suggested": ", ".join(row["suggested"]), "score": row["score"]}
        for row in rows[:shown]
    ]
    finding = {
        "kind": "label_errors",
        "severity": "warning",
        "message": f"{len(rows):,} training rows whose given label looks wrong (confident learning on the out-of-fold "
        f"probabilities of {cv_dir}), most likely first; all of them: --format json",
        "examples": examples,
    }
    return finding, rows
