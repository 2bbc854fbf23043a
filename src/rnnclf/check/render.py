"""rnnclf data check's report as a terminal table, Markdown, or JSON (check.checker.check_data computes it)."""

from __future__ import annotations

import json

_MARK = {"serious": "SERIOUS", "warning": "warning", "info": "info"}


def format_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False)


def _example(item: dict) -> str:
    parts = [
        f"{item['file']}:{item['line']} ({item['split']})" if "split" in item else f"{item['file']}:{item['line']}"
    ]
    if "text" in item:
        parts.append(json.dumps(item["text"], ensure_ascii=False))
    if item.get("label") is not None:
        parts.append(f"label {item['label']}")
    if "same_as_line" in item:
        parts.append(f"same as {item['same_as_file']}:{item['same_as_line']} ({item['same_as_split']})")
    if "near_line" in item:
        where = f"{item['near_file']}:{item['near_line']} ({item['near_split']})"
        parts.append(f"like {where} " + json.dumps(item["near_text"], ensure_ascii=False))
    if "suggested" in item:
        parts.append(f"suggested {item['suggested']} (label quality {item['score']:.3f})")
    if "jaccard" in item:
        parts.append(f"Jaccard {item['jaccard']}")
    if "tokens" in item:
        parts.append(f"{item['tokens']:,} tokens")
    return "  ".join(parts)


def _label_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    names = [split["name"] for split in report["splits"]]
    labels = sorted({label for counts in report["labels"].values() for label in counts})
    rows = [[label] + [f"{report['labels'][name].get(label, 0):,}" for name in names] for label in labels]
    return ["label", *names], rows


def _length_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    header = ["split", "texts", "measured", "p50", "p90", "p95", "p99", "max", "cut", "padding", "<unk>"]
    rows = []
    for name, stats in report["tokens"]["lengths"].items():
        rows.append(
            [name, f"{stats['texts']:,}", f"{stats['measured']:,}"]
            + [f"{stats[key]:g}" for key in ("p50", "p90", "p95", "p99", "max")]
            + [f"{stats[key]:.1%}" for key in ("cut_share", "padding_share", "unk_share")]
        )
    return header, rows


def _notes(report: dict) -> list[str]:
    tokens, near = report["tokens"], report["settings"]["near_duplicates"]
    notes = [
        f"exact overlap and duplicates compare texts after normalisation: {report['settings']['normalisation']}",
        f"near-duplicates: {near['similarity']} >= {near['jaccard_threshold']}; candidates from MinHash "
        f"({near['permutations']} permutations, LSH {near['bands']} bands of {near['rows_per_band']} rows), "
        "each confirmed by its exact Jaccard",
        f"tokens: {tokens['tokenizer']['kind']} tokenizer {tokens['tokenizer']['source']}, vocabulary "
        f"{tokens['tokenizer']['vocabulary']:,}; data.max_length {tokens['max_length']}, train.batch_size "
        f"{tokens['batch_size']}; <unk> = share of tokens outside the vocabulary",
    ]
    pretrained = tokens.get("pretrained")
    if pretrained:
        notes.append(
            f"pretrained vectors {pretrained['source']}: {pretrained['note']}"
            if "note" in pretrained
            else f"pretrained vectors {pretrained['source']}: {pretrained['vocab_coverage']:.1%} of the vocabulary, "
            f"{pretrained['token_coverage']:.1%} of the training tokens ({pretrained['found']:,} words)"
        )
    for name, stats in report.get("multi_label", {}).items():
        pairs = ", ".join(f"{a}+{b} {count:,}" for a, b, count in stats["top_pairs"]) or "none"
        notes.append(
            f"multi-label {name}: {stats['cardinality']:.2f} labels per text, {stats['no_label']:,} with none; "
            f"top pairs: {pairs}"
        )
    return notes


def _title(report: dict) -> str:
    splits = ", ".join(
        f"{s['name']} {s['rows']:,} rows ({s['file']}{', carved: ' + s['carved'] if 'carved' in s else ''})"
        for s in report["splits"]
    )
    return f"rnnclf data check: {report['serious']} serious finding(s), {len(report['findings'])} in all; {splits}"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}" for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]


def format_table(report: dict) -> str:
    lines = [_title(report), "", *_grid(*_label_rows(report)), "", "findings:"]
    for item in report["findings"]:
        lines.append(f"  {_MARK[item['severity']]:<8} {item['message']}")
        lines += [f"           {_example(example)}" for example in item["examples"]]
    if not report["findings"]:
        lines.append("  none")
    lines += ["", "lengths in tokens:", *(f"  {line}" for line in _grid(*_length_rows(report))), ""]
    lines += [f"- {note}" for note in _notes(report)]
    return "\n".join(lines)


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    header = [f"`{name}`" if "<" in name else name for name in header]  # <unk> would read as an HTML tag
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def format_markdown(report: dict) -> str:
    lines = ["# Data check", "", _title(report).removeprefix("rnnclf data check: "), "", "## Findings", ""]
    for item in report["findings"]:
        lines.append(f"- **{_MARK[item['severity']]}** ({item['kind']}): {item['message']}")
        lines += ["  - `" + _example(example).replace("`", "'") + "`" for example in item["examples"]]
    if not report["findings"]:
        lines.append("None.")
    lines += ["", "## Labels", "", *_markdown_table(*_label_rows(report)), ""]
    lines += ["## Lengths in tokens", "", *_markdown_table(*_length_rows(report)), "", "## Notes", ""]
    lines += [f"- {note}" for note in _notes(report)]
    return "\n".join(lines) + "\n"
