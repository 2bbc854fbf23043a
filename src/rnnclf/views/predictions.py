"""Predictions for people and programs: JSON records, JSON lines and terminal tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from rnnclf.inference.decisions import LabelSet


def printable(text: str) -> str:
    """A text for a terminal: control characters (escape sequences, newlines) written as Python escapes."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def format_predictions(texts: Sequence[str], predictions: Iterable[list[tuple[str, float]]], fmt: str) -> str:
    rows = list(zip(texts, predictions, strict=True))
    if fmt == "json":
        return "\n".join(json.dumps(prediction_record(text, pred), ensure_ascii=False) for text, pred in rows)
    lines = []
    for text, pred in rows:
        text = printable(text)
        shown = text if len(text) <= 60 else text[:57] + "..."
        lines.append(f"{shown:<60}  " + "  ".join(f"{label} {p:.3f}" for label, p in pred))
    return "\n".join(lines)


def format_label_sets(texts: Sequence[str], sets: Iterable[LabelSet], fmt: str) -> str:
    """Multi-label predictions: JSON lines {"text", "labels", "scores"[, "top"]}, or a table of each text's labels
    (with their probabilities) and, when asked for, its top labels."""
    rows = list(zip(texts, sets, strict=True))
    if fmt == "json":
        return "\n".join(json.dumps(label_set_record(text, found), ensure_ascii=False) for text, found in rows)
    lines = []
    for text, found in rows:
        text = printable(text)
        shown = text if len(text) <= 60 else text[:57] + "..."
        labels = "  ".join(f"{label} {found.scores[label]:.3f}" for label in found.labels) or "(no label)"
        top = ("  | top: " + "  ".join(f"{label} {p:.3f}" for label, p in found.top)) if found.top else ""
        lines.append(f"{shown:<60}  {labels}{top}")
    return "\n".join(lines)


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
