"""Read labelled texts from CSV, TSV and JSONL files, with one clear error per bad row."""

from __future__ import annotations

import csv
import json
import sys
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rnnclf.errors import RnnclfError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

csv.field_size_limit(sys.maxsize)  # a long document in one CSV field is not an error


@dataclass
class Split:
    """The texts and labels of one split; `source` names where they came from, for messages."""

    texts: list[str]
    labels: list[str]
    source: str
    rows: Sequence[int] = ()  # where each text is in its file: messages name it as `where` N
    where: str = "row"

    def __len__(self) -> int:
        return len(self.texts)


def detect_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise RnnclfError(
            f"{path}: cannot tell the format from the extension; use .csv, .tsv or .jsonl, or set data.format"
        )
    return found


def _check_file(path: Path) -> None:
    if not path.exists():
        raise RnnclfError(f"{path}: file not found")
    if path.is_dir():
        raise RnnclfError(f"{path}: is a directory, expected a data file")


def _label_text(value: object) -> str | None:
    """Labels are strings; numbers and booleans become their text, so `1` and "1" are one label."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _rows_delimited(
    path: Path, delimiter: str, text_field: str, label_field: str
) -> Iterator[tuple[int, object, object]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = reader.fieldnames
        if not header:
            raise RnnclfError(f"{path}: file is empty (expected a header row with '{text_field}' and '{label_field}')")
        header = [name.strip() for name in header]
        reader.fieldnames = header
        missing = [field for field in (text_field, label_field) if field not in header]
        if missing:
            raise RnnclfError(
                f"{path}: no column '{missing[0]}' in the header (columns: {', '.join(header)}); "
                "set data.text_field / data.label_field"
            )
        for row in reader:
            if None in row:  # more fields than the header: a delimiter inside an unquoted field
                raise RnnclfError(
                    f"{path}: row {reader.line_num}: {len(header) + len(row[None])} fields, header has {len(header)}"
                )
            yield reader.line_num, row.get(text_field), row.get(label_field)


def _rows_jsonl(path: Path, text_field: str, label_field: str) -> Iterator[tuple[int, object, object]]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RnnclfError(f"{path}: line {number}: invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise RnnclfError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
            for field in (text_field, label_field):
                if field not in record:
                    raise RnnclfError(
                        f"{path}: line {number}: no key '{field}' (keys: {', '.join(record)}); set data.text_field / data.label_field"
                    )
            yield number, record[text_field], record[label_field]


def _first_undecodable_line(path: Path) -> int:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def read_split(
    path: Path, text_field: str = "text", label_field: str = "label", fmt: str = "auto", need_labels: bool = True
) -> Split:
    """Read a whole file of (text, label) rows. Empty texts and missing labels are errors naming the row."""
    path = Path(path)
    _check_file(path)
    kind = detect_format(path, fmt)
    rows = (
        _rows_jsonl(path, text_field, label_field)
        if kind == "jsonl"
        else _rows_delimited(path, "," if kind == "csv" else "\t", text_field, label_field)
    )
    texts: list[str] = []
    labels: list[str] = []
    numbers = array("q")  # 8 bytes a text, not a Python int each
    where = "line" if kind == "jsonl" else "row"
    try:
        for number, text, label in rows:
            if not isinstance(text, str) or not text.strip():
                raise RnnclfError(f"{path}: {where} {number}: empty text in '{text_field}'")
            label_text = _label_text(label)
            if label_text is None and need_labels:
                raise RnnclfError(f"{path}: {where} {number}: missing label in '{label_field}'")
            texts.append(text)
            labels.append(label_text or "")
            numbers.append(number)
    except UnicodeDecodeError:
        raise RnnclfError(
            f"{path}: line {_first_undecodable_line(path)}: not UTF-8 text; re-save the file as UTF-8"
        ) from None
    except csv.Error as exc:
        raise RnnclfError(f"{path}: malformed {kind.upper()} near row {len(texts) + 2}: {exc}") from None
    if not texts:
        raise RnnclfError(f"{path}: no rows of data")
    return Split(texts, labels, str(path), numbers, where)
