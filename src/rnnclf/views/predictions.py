"""Predictions for people and programs: JSON records, JSON lines and terminal tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from rnnclf.inference.decisions import LabelSet


def printable(text: str) -> str:
    """A text for a terminal: control characters (escape sequences, newlines) written as Python escapes."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def format_predictions(
    texts: Sequence[str], predictions: Iterable[list[tuple[str, float]]], fmt: str, judged: list | None = None
) -> str:
    """Single-label predictions as JSON lines or a table; with `judged` (inference.trust.judge), each text's
    prediction set and out-of-domain reasons too."""
    rows = list(zip(texts, predictions, judged or [None] * len(texts), strict=True))
    if fmt == "json":
        records = (prediction_record(text, pred) | judgement_record(judgement) for text, pred, judgement in rows)
        return "\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    lines = []
    for text, pred, judgement in rows:
        text = printable(text)
        shown = text if len(text) <= 60 else text[:57] + "..."
        lines.append(f"{shown:<60}  " + "  ".join(f"{label} {p:.3f}" for label, p in pred) + judged_cell(judgement))
    return "\n".join(lines)


def format_label_sets(texts: Sequence[str], sets: Iterable[LabelSet], fmt: str, judged: list | None = None) -> str:
    """Multi-label predictions: JSON lines {"text", "labels", "scores"[, "top"]}, or a table of each text's labels
    (with their probabilities) and, when asked for, its top labels; `judged` as in format_predictions."""
    rows = list(zip(texts, sets, judged or [None] * len(texts), strict=True))
    if fmt == "json":
        records = (label_set_record(text, found) | judgement_record(judgement) for text, found, judgement in rows)
        return "\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    lines = []
    for text, found, judgement in rows:
        text = printable(text)
        shown = text if len(text) <= 60 else text[:57] + "..."
        labels = "  ".join(f"{label} {found.scores[label]:.3f}" for label in found.labels) or "(no label)"
        top = ("  | top: " + "  ".join(f"{label} {p:.3f}" for label, p in found.top)) if found.top else ""
        lines.append(f"{shown:<60}  {labels}{top}{judged_cell(judgement)}")
    return "\n".join(lines)


def judgement_record(judgement) -> dict:
    """A judgement's JSON keys: "set" and "abstain" when a coverage was asked, and "out_of_domain" (reasons)."""
    if judgement is None:
        return {}
    record = {"set": judgement.labels, "abstain": judgement.abstain} if judgement.labels is not None else {}
    return record | {"out_of_domain": judgement.out_of_domain}


def judged_cell(judgement) -> str:
    """A judgement at the end of a table row: the set (or ABSTAIN) and the out-of-domain reasons."""
    if judgement is None:
        return ""
    cell = ""
    if judgement.labels is not None:
        cell = "  | ABSTAIN" if judgement.abstain else "  | set: " + ", ".join(judgement.labels)
        cell += f" ({len(judgement.labels)} labels)" if judgement.abstain else ""
    if judgement.out_of_domain:
        cell += "  | OUT OF DOMAIN: " + "; ".join(judgement.out_of_domain)
    return cell


def prediction_record(text: str, pred: list[tuple[str, float]]) -> dict:
    """A single-label prediction as JSON: the text, its label and probability, and the top labels."""
    return {
        "text": text,
        "label": pred[0][0],
        "probability": round(pred[0][1], 6),
        "top": [{"label": label, "probability": round(p, 6)} for label, p in pred],
    }


def label_set_record(text: str, found: LabelSet) -> dict:
    record = {
        "text": text,
        "labels": found.labels,
        "scores": {label: round(p, 6) for label, p in found.scores.items()},
    }
    if found.top:
        record["top"] = [{"label": label, "probability": round(p, 6)} for label, p in found.top]
    return record
