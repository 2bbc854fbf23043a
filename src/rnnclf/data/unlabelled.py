"""data.unlabelled: texts without labels for rnnclf pretrain, from plain text or the text field of data files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rnnclf.config.schema import DataConfig
from rnnclf.data.readers import detect_format
from rnnclf.errors import RnnclfError


def read_unlabelled(path: Path, data: DataConfig) -> list[str]:
    """The non-empty texts of one file: each line of a .txt file, or data.text_field of a .jsonl / .csv / .tsv
    (the format by extension: data.format describes the labelled files)."""
    where = f"data.unlabelled: {path}"
    if not path.exists():
        raise RnnclfError(f"{where}: file not found")
    if path.is_dir():
        raise RnnclfError(f"{where}: is a directory, expected a text or data file")
    if path.suffix.lower() not in (".txt", ".jsonl", ".csv", ".tsv"):
        raise RnnclfError(f"{where}: use .txt (one text per line), .jsonl, .csv or .tsv")
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            if path.suffix.lower() == ".txt":
                return [line.strip() for line in handle if line.strip()]
            return _field_texts(handle, detect_format(path), data.text_field, where)
    except UnicodeDecodeError as exc:
        raise RnnclfError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise RnnclfError(f"{where}: not readable as CSV / TSV ({exc})") from None


def _field_texts(handle, fmt: str, field: str, where: str) -> list[str]:
    texts = []
    if fmt == "jsonl":
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise RnnclfError(f"{where} line {number}: not a JSON object") from None
            if not isinstance(row, dict) or not isinstance(row.get(field), str):
                raise RnnclfError(f"{where} line {number}: no text field '{field}' (data.text_field)")
            texts.append(row[field])
    else:
        reader = csv.DictReader(handle, delimiter="\t" if fmt == "tsv" else ",")
        if field not in (reader.fieldnames or []):
            columns = ", ".join(reader.fieldnames or [])
            raise RnnclfError(f"{where}: no column '{field}' (data.text_field) in its header (columns: {columns})")
        texts = [row[field] or "" for row in reader]
    return [text for text in texts if text.strip()]
