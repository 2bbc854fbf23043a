"""Read labelled texts from CSV, TSV and JSONL files, with one clear error per bad row."""

from __future__ import annotations

import csv
import json
import sys
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnclf.errors import RnnclfError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

FIELDS_HINT = "set data.text_field / data.label_field"  # how a config chooses the columns (predict: --text-field)

csv.field_size_limit(sys.maxsize)  # a long document in one CSV field is not an error


@dataclass
class Split:
    """The texts and labels of one split; `source` names where they came from, for messages."""

    texts: Sequence[str] | FileTexts
    labels: list[str] | list[tuple[str, ...]]  # multi-label: a sorted tuple of labels per text, maybe empty
    source: str
    rows: Sequence[int] = ()  # the line of its file where each text starts, for messages

    def __len__(self) -> int:
        return len(self.labels)


def detect_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise RnnclfError(
            f"{path}: cannot tell the format from the extension; use .csv, .tsv or .jsonl, or set data.format"
        )
    return found


def check_file(path: Path) -> None:
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


@dataclass(frozen=True)
class LabelFormat:
    """How a label field reads: one label, or (multi_label) a JSON list / a string split on `separator`."""

    multi_label: bool = False
    separator: str = "|"

    def parse(self, value: object, kind: str) -> str | tuple[str, ...] | None:
        """The label(s) of a field of a `kind` file; None when missing. Raises ValueError saying what is wrong."""
        if not self.multi_label:
            if isinstance(value, list):
                raise ValueError(
                    "is a list and the data is single-label; set data.multi_label: true for several labels per text"
                )
            return _label_text(value)
        if value is None:
            return None
        if kind != "jsonl" and isinstance(value, str):
            value = value.split(self.separator) if value.strip() else []
        if not isinstance(value, list):
            raise ValueError(f"is {type(value).__name__}, expected a list of labels (data.multi_label is true)")
        labels = [_label_text(item) for item in value]
        if any(label is None for label in labels):
            raise ValueError("holds an empty label")
        return tuple(sorted(set(labels)))  # type: ignore[arg-type]


SINGLE_LABEL = LabelFormat()


def _rows_delimited(
    path: Path, delimiter: str, text_field: str, label_field: str, hint: str
) -> Iterator[tuple[int, object, object]]:
    """(line, text, label) per record; the line is where the record starts (a quoted field may span lines)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)  # strict: an unclosed quote is an error
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise RnnclfError(f"{path}: file is empty (expected a header row with '{text_field}' and '{label_field}')")
        missing = [field for field in (text_field, label_field) if field not in header]
        if missing:
            raise RnnclfError(f"{path}: no column '{missing[0]}' in the header (columns: {', '.join(header)}); {hint}")
        text_at, label_at = header.index(text_field), header.index(label_field)
        while True:
            line = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return
            if not row:  # a blank line
                continue
            if len(row) > len(header):  # a delimiter inside an unquoted field
                raise RnnclfError(f"{path}: line {line}: {len(row)} fields, header has {len(header)}")
            yield (
                line,
                row[text_at] if text_at < len(row) else None,
                row[label_at] if label_at < len(row) else None,
            )


def _rows_jsonl(
    path: Path, text_field: str, label_field: str, hint: str, optional: bool = False
) -> Iterator[tuple[int, object, object]]:
    """(line, text, label) per record; `optional`: a record without the label key has label None."""
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
            for field in (text_field,) if optional else (text_field, label_field):
                if field not in record:
                    raise RnnclfError(f"{path}: line {number}: no key '{field}' (keys: {', '.join(record)}); {hint}")
            yield number, record[text_field], record.get(label_field)


def _first_undecodable_line(path: Path) -> int:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def read_split(
    path: Path,
    text_field: str = "text",
    label_field: str = "label",
    fmt: str = "auto",
    need_labels: bool = True,
    keep_texts: bool = True,
    hint: str = FIELDS_HINT,
    label_format: LabelFormat = SINGLE_LABEL,
) -> Split:
    """Read a whole file of (text, label) rows. Empty texts and missing labels are errors naming the row.

    With keep_texts=False the texts are not held: `texts` reads them again from the file when iterated
    (FileTexts), so that a corpus of millions of documents costs memory for its labels only.
    """
    path = Path(path)
    check_file(path)
    kind = detect_format(path, fmt)
    version = _version(path)  # before reading: a change from here on is caught when the texts are read again
    texts: list[str] = []
    labels: list = []
    numbers = array("q")  # 8 bytes a text, not a Python int each
    names: dict = {}  # one object per label name (or set of names), not one per row
    for number, text, label in _checked_rows(path, kind, text_field, label_field, need_labels, hint, label_format):
        if keep_texts:
            texts.append(text)
        labels.append(names.setdefault(label, label))
        numbers.append(number)
    if not numbers:
        raise RnnclfError(f"{path}: no rows of data")
    kept = texts if keep_texts else FileTexts(path, kind, text_field, label_field, len(numbers), version)
    return Split(kept, labels, str(path), numbers)


def _checked_rows(
    path: Path,
    kind: str,
    text_field: str,
    label_field: str,
    need_labels: bool = False,
    hint: str = FIELDS_HINT,
    label_format: LabelFormat = SINGLE_LABEL,
) -> Iterator[tuple[int, str, str | tuple[str, ...]]]:
    """(row number, text, label) of every row, each checked; labels are read only when need_labels (else "")."""
    for number, text, label in raw_rows(path, kind, text_field, label_field, hint):
        if not isinstance(text, str) or not text.strip():
            raise RnnclfError(f"{path}: line {number}: empty text in '{text_field}'")
        if not need_labels:
            yield number, text, ""
            continue
        try:
            parsed = label_format.parse(label, kind)
        except ValueError as exc:
            raise RnnclfError(f"{path}: line {number}: the label field '{label_field}' {exc}") from None
        if parsed is None:
            raise RnnclfError(f"{path}: line {number}: missing label in '{label_field}'")
        yield number, text, parsed


def raw_rows(
    path: Path, kind: str, text_field: str, label_field: str, hint: str = FIELDS_HINT, optional: bool = False
) -> Iterator[tuple[int, object, object]]:
    """(row number, text, label) of every row as the file has them (empty or missing values too); a row that
    cannot be read (bad JSON, malformed CSV, not UTF-8) is an error naming the file and line. `optional`: JSONL
    records may lack the label key (label None)."""
    rows = (
        _rows_jsonl(path, text_field, label_field, hint, optional)
        if kind == "jsonl"
        else _rows_delimited(path, "," if kind == "csv" else "\t", text_field, label_field, hint)
    )
    number = 1
    try:
        for number, text, label in rows:
            yield number, text, label
    except UnicodeDecodeError:
        raise RnnclfError(
            f"{path}: line {_first_undecodable_line(path)}: not UTF-8 text; re-save the file as UTF-8"
        ) from None
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise RnnclfError(
                f"{path}: a quoted field after line {number} runs to the end of the file (an unclosed quote?)"
            ) from None
        raise RnnclfError(f"{path}: malformed {kind.upper()} after line {number}: {exc}") from None


class FileTexts:
    """A split's texts, read again from its file (checked once already) each time they are iterated.

    `keep` (a boolean mask over the file's rows) picks a part, such as the rows left after carving a
    validation split. Iteration only: encoding and fitting a tokenizer read texts in order. The file must be
    the one first read (same size, time and inode): texts from another version would not match the labels.
    """

    def __init__(
        self,
        path: Path,
        kind: str,
        text_field: str,
        label_field: str,
        total: int,
        version: tuple[int, ...] | None,
        keep: np.ndarray | None = None,
    ):
        self.path, self.kind, self.text_field, self.label_field = path, kind, text_field, label_field
        self.total, self.version, self.keep = total, version, keep  # total: rows in the file

    def __len__(self) -> int:
        return self.total if self.keep is None else int(self.keep.sum())

    def subset(self, keep: np.ndarray) -> FileTexts:
        """The texts at the positions where `keep` (a mask over these texts) is true."""
        if self.keep is not None:
            mask = np.zeros(self.total, dtype=bool)
            mask[np.flatnonzero(self.keep)[keep]] = True
            keep = mask
        return FileTexts(self.path, self.kind, self.text_field, self.label_field, self.total, self.version, keep)

    def __iter__(self) -> Iterator[str]:
        changed = RnnclfError(f"{self.path}: the file changed (or was removed) while rnnclf read it; run again")
        if _version(self.path) != self.version:
            raise changed
        count = 0
        for index, (_, text, _) in enumerate(_checked_rows(self.path, self.kind, self.text_field, self.label_field)):
            count = index + 1
            if self.keep is None or (index < self.total and self.keep[index]):
                yield text
        if count != self.total:
            raise changed


def _version(path: Path) -> tuple[int, ...] | None:
    try:
        stat = path.stat()
    except OSError:
        return None  # gone: no version matches it
    return stat.st_size, stat.st_mtime_ns, stat.st_ino
