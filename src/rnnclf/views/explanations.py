"""Explanations shown: JSON lines, a table with tokens coloured on a terminal, and a self-contained HTML page."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from rnnclf.files import write_atomic
from rnnclf.inference.decisions import LabelSet
from rnnclf.inference.explain import Attribution
from rnnclf.views.predictions import (
    format_label_sets,
    format_predictions,
    label_set_record,
    prediction_record,
    printable,
)

DIGITS = 4
# 256-colour backgrounds from faint to strong: green supports the explained label, red speaks against it
GREENS, REDS = (194, 157, 120, 83, 46), (224, 217, 210, 203, 196)
FAINT = 0.1  # a token under this share of the text's largest |score| is left uncoloured


def pairs(attribution: Attribution) -> list[list]:
    """[[token, score], ...], the scores rounded."""
    return [
        [word, round(float(score), DIGITS)] for word, score in zip(attribution.words, attribution.scores, strict=True)
    ]


def format_explained(
    texts: Sequence[str],
    predictions: Sequence[list[tuple[str, float]]] | Sequence[LabelSet],
    attributions: Sequence[list[Attribution]],
    fmt: str,
    colour: bool = False,
) -> str:
    """The predictions as `rnnclf predict` shows them, each with its explanation: JSON lines with "explained" and
    "explanation" (multi-label: "explanations", label -> pairs), or under each table row a line per explained
    label (tokens coloured when `colour`, otherwise each with its score)."""
    blocks = []
    for text, prediction, explained in zip(texts, predictions, attributions, strict=True):
        multi_label = isinstance(prediction, LabelSet)
        if fmt == "json":
            if multi_label:
                record = label_set_record(text, prediction)
                record["explanations"] = {found.label: pairs(found) for found in explained}
                if explained[0].ngram_total is not None:
                    record["ngrams"] = {found.label: ngram_record(found) for found in explained}
            else:
                record = prediction_record(text, prediction)
                record["explained"], record["explanation"] = explained[0].label, pairs(explained[0])
                if explained[0].ngram_total is not None:
                    record["ngrams"] = ngram_record(explained[0])
            blocks.append(json.dumps(record, ensure_ascii=False))
        else:
            shown = (format_label_sets if multi_label else format_predictions)([text], [prediction], fmt)
            lines = [f"    {found.label}: {tokens_line(found, colour)}{ngrams_line(found)}" for found in explained]
            blocks.append("\n".join([shown, *lines]))
    return "\n".join(blocks)


def ngram_record(attribution: Attribution) -> dict:
    """A wide head's part: its share of the log-odds and the largest n-gram contributions."""
    shown = [[name, round(float(score), DIGITS)] for name, score in attribution.ngrams]
    return {"total": round(float(attribution.ngram_total), DIGITS), "largest": shown}


def ngrams_line(attribution: Attribution) -> str:
    """'\n      n-grams +2.31: crude oil +0.80, opec +0.55, ...' for a model with a wide head, else ''."""
    if attribution.ngram_total is None:
        return ""
    shown = ", ".join(f"{printable(name)} {score:+.2f}" for name, score in attribution.ngrams)
    return f"\n      n-grams {attribution.ngram_total:+.2f}: {shown}"


def tokens_line(attribution: Attribution, colour: bool) -> str:
    """The tokens on one line: coloured by score, or each followed by its score."""
    words = [printable(word) for word in attribution.words]
    if not colour:
        return " ".join(f"{word}({score:+.2f})" for word, score in zip(words, attribution.scores, strict=True))
    largest = float(abs(attribution.scores).max()) or 1.0
    return " ".join(_ansi(word, float(score) / largest) for word, score in zip(words, attribution.scores, strict=True))


def _ansi(word: str, share: float) -> str:
    """The word on a background whose colour says the sign and whose strength says |share| (of the largest)."""
    if abs(share) < FAINT:
        return word
    shades = GREENS if share > 0 else REDS
    level = min(len(shades) - 1, int(abs(share) * len(shades)))
    return f"\x1b[30;48;5;{shades[level]}m{word}\x1b[0m"


def write_html(
    path: Path, texts: Sequence[str], predictions: Sequence, attributions: Sequence[list[Attribution]], run: str
) -> None:
    """One self-contained page (inline CSS, no script, nothing fetched), written atomically."""
    write_atomic(path, render_html(texts, predictions, attributions, run).encode("utf-8"))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rnnclf explanations: {run}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
.text {{ border-top: 1px solid #ddd; padding: .8rem 0; }}
.label {{ font-weight: 600; margin-bottom: .4rem; }}
.tokens span {{ padding: .1rem .2rem; margin: .1rem; border-radius: .2rem; display: inline-block; line-height: 1.6; }}
.tokens span.unknown {{ text-decoration: underline dotted; }}
.legend span {{ padding: .1rem .4rem; border-radius: .2rem; }}
.source {{ color: #666; font-size: .9em; margin-top: .3rem; }}
</style></head><body>
<h1>Why the model decided</h1>
<p>Run <code>{run}</code>. Each token's score is its integrated-gradients attribution to the label's log-odds:
<span class="legend"><span style="background: rgba(0, 160, 0, .6)">supports the label</span>
<span style="background: rgba(220, 0, 0, .6)">speaks against it</span></span>;
the stronger the colour, the larger the score next to the text's largest. Hover a token for its score;
a dotted underline marks a word the model did not know (&lt;unk&gt;).</p>
{texts}
</body></html>
"""


def render_html(
    texts: Sequence[str], predictions: Sequence, attributions: Sequence[list[Attribution]], run: str
) -> str:
    sections = []
    for number, (text, prediction, explained) in enumerate(zip(texts, predictions, attributions, strict=True), 1):
        parts = [f'<div class="text" id="text-{number}">']
        unlabelled = isinstance(prediction, LabelSet) and not prediction.labels
        for found in explained:
            label = html.escape(found.label)
            note = " &mdash; no label reaches its threshold; the most probable one is explained" if unlabelled else ""
            parts.append(f'<div class="label">{number}. {label} ({found.probability:.3f}){note}</div>')
            parts.append(f'<div class="tokens">{_html_tokens(found)}</div>')
            if found.ngram_total is not None:
                shown = ", ".join(f"{html.escape(name)} {score:+.2f}" for name, score in found.ngrams)
                parts.append(f'<div class="source">n-grams {found.ngram_total:+.2f} of the log-odds: {shown}</div>')
        parts.append(f'<div class="source">{html.escape(text)}</div></div>')
        sections.append("\n".join(parts))
    return PAGE.format(run=html.escape(run), texts="\n".join(sections))


def _html_tokens(attribution: Attribution) -> str:
    largest = float(abs(attribution.scores).max()) or 1.0
    spans = []
    for word, score, unknown in zip(attribution.words, attribution.scores, attribution.unknown, strict=True):
        share = float(score) / largest
        colour = "0, 160, 0" if share > 0 else "220, 0, 0"
        marked, note = (' class="unknown"', " (not in the vocabulary)") if unknown else ("", "")
        spans.append(
            f'<span{marked} style="background: rgba({colour}, {abs(share):.2f})" '
            f'title="{float(score):+.4f}{note}">{html.escape(word)}</span>'
        )
    return " ".join(spans)
