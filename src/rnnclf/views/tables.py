"""Scores as plain-text tables for people: single-label and multi-label reports."""

from __future__ import annotations

from typing import Any

from rnnclf.evaluation.calibration import describe_calibration


def format_multilabel_report(report: dict[str, Any], title: str = "") -> str:
    """A plain-text table for people: a summary line, then every label by support, most frequent first."""
    lines = [title] if title else []
    loss = f"  loss {report['loss']:.4f}" if "loss" in report else ""
    lines.append(
        f"micro F1 {report['micro_f1']:.4f}{describe_baseline(report, 'linear_baseline', 'micro_f1')}  macro F1 "
        f"{report['macro_f1']:.4f}  samples F1 {report['samples_f1']:.4f}"
        f"  micro P {report['micro_precision']:.4f}  micro R {report['micro_recall']:.4f}"
        f"  subset accuracy {report['subset_accuracy']:.4f}  Hamming loss {report['hamming_loss']:.4f}"
        f"  ({report['support']} texts){loss}"
    )
    if "calibration" in report:
        lines.append(f"calibration (every text and label): {describe_calibration(report['calibration'])}")
    labels = sorted(report["labels"], key=lambda label: -report["per_class"][label]["support"])
    width = max(12, *(len(label) for label in labels)) if labels else 12
    lines.append(f"{'label':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8} {'threshold':>9}")
    for label in labels:
        row = report["per_class"][label]
        lines.append(
            f"{label:<{width}} {row['precision']:>9.4f} {row['recall']:>9.4f} {row['f1']:>9.4f}"
            f" {row['support']:>8d} {row['threshold']:>9.4f}"
        )
    return "\n".join(lines)


def format_report(report: dict[str, Any], title: str = "") -> str:
    """A plain-text table for people: summary, per-class scores, confusion matrix."""
    lines = [title] if title else []
    loss = f"  loss {report['loss']:.4f}" if "loss" in report else ""
    baseline = describe_baseline(report, "linear_baseline", "accuracy")
    lines.append(
        f"accuracy {report['accuracy']:.4f}{baseline}  macro F1 {report['macro_f1']:.4f}  weighted F1 "
        f"{report['weighted_f1']:.4f}  ({report['support']} texts){loss}"
    )
    if "calibration" in report:
        lines.append(f"calibration: {describe_calibration(report['calibration'])}")
    labels = report["labels"]
    width = max(12, *(len(label) for label in labels))
    lines.append(f"{'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for label in labels:
        row = report["per_class"][label]
        lines.append(
            f"{label:<{width}} {row['precision']:>9.4f} {row['recall']:>9.4f} {row['f1']:>9.4f} {row['support']:>8d}"
        )
    if len(labels) <= 20:
        cell = max(
            5, *(len(str(v)) for row in report["confusion_matrix"] for v in row), *(len(label[:8]) for label in labels)
        )
        lines.append("confusion matrix (rows: true, columns: predicted)")
        lines.append(" " * width + " " + " ".join(f"{label[:8]:>{cell}}" for label in labels))
        for label, row in zip(labels, report["confusion_matrix"], strict=True):
            lines.append(f"{label:<{width}} " + " ".join(f"{v:>{cell}d}" for v in row))
    else:
        lines.append(f"confusion matrix: {len(labels)} classes, see the JSON output")
    return "\n".join(lines)


def describe_baseline(source: dict[str, Any] | None, key: str, metric: str) -> str:
    """' (linear baseline 0.9763)' for a report line from source[key] (a split's figures of the linear baseline),
    or '' when there is none."""
    figures = (source or {}).get(key)
    if not figures or metric not in figures:
        return ""
    return f" (linear baseline {figures[metric]:.4f})"


def describe_prediction_sets(sets: dict[str, Any]) -> str:
    """eval --coverage's line: the coverage asked and reached, the mean set size and the abstentions."""
    reached = sets["empirical_coverage"]
    what = "of the texts' labels" if "recall_risk" in sets else "of the texts"
    shown = "n/a" if reached is None else f"{reached:.2%}"
    line = (
        f"prediction sets ({sets['method']}) at coverage {sets['coverage']:g}: the true label is in the set for "
        f"{shown} {what}; mean set size {sets['mean_set_size']:.2f}, abstain {sets['abstain']:.1%} "
        f"(empty {sets['empty_sets']:.1%}, every label {sets['full_sets']:.1%})"
    )
    if sets.get("marginal_labels"):
        line += f"; {len(sets['marginal_labels'])} classes with too few validation texts use the shared quantile"
    return line
