"""The unlabelled pool of rnnclf suggest, read in chunks whatever its size: CSV / TSV / JSONL (the run's text field)
or plain text (one text per line). A pool whose rows carry labels already is a mistake (one line naming the row):
those texts belong in the training data, not among the ones to label.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rnnclf.data.readers import FORMATS, raw_rows
from rnnclf.errors import RnnclfError

CHUNK = 4096  # texts read, scored and checked at a time


@dataclass
class Pool:
    """A pool file and how to read it: its format, and the run's text and label fields."""

    path: Path
    kind: str  # csv, tsv, jsonl or txt
    text_field: str
    label_field: str

    def rows(self) -> Iterator[tuple[int, str]]:
        """(line, text) of every row with a text (rows with none are skipped); a row with a label is an error."""
        if self.kind == "txt":
            yield from self._lines()
            return
        where = "choose the column with --text-field"
        labelled = self.kind == "jsonl" or self.label_field in self._header()
        label_field = self.label_field if labelled else self.text_field
        for line, text, label in raw_rows(self.path, self.kind, self.text_field, label_field, where, optional=True):
            if labelled and label not in (None, "", []):
                raise RnnclfError(
                    f"{self.path}: line {line}: has a label ({json.dumps(label)} in '{self.label_field}'); suggest "
                    "takes texts without labels: put labelled texts in the training data, or empty the column"
                )
            if not isinstance(text, str):
                if text is None:
                    continue
                raise RnnclfError(f"{self.path}: line {line}: '{self.text_field}' is not a string")
            if text.strip():
                yield line, text

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[list[int], list[str]]]:
        lines, texts = [], []
        for line, text in self.rows():
            lines.append(line)
            texts.append(text)
            if len(texts) == size:
                yield lines, texts
                lines, texts = [], []
        if texts:
            yield lines, texts

    def _header(self) -> list[str]:
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle, delimiter="\t" if self.kind == "tsv" else ","), [])
        except (UnicodeDecodeError, csv.Error):
            return []  # reading the rows says what is wrong, with the line
        return [name.strip() for name in header]

    def _lines(self) -> Iterator[tuple[int, str]]:
        try:
            with self.path.open(encoding="utf-8-sig") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield number, line.rstrip("\r\n")
        except UnicodeDecodeError:
            raise RnnclfError(f"{self.path}: not UTF-8 text; re-save the file as UTF-8") from None


def open_pool(path: Path, text_field: str, label_field: str) -> Pool:
    """The pool file, checked before any work: it exists, is a file, and its format is known by its extension."""
    if not path.exists():
        raise RnnclfError(f"--pool {path}: file not found")
    if path.is_dir():
        raise RnnclfError(f"--pool {path}: is a directory, expected a file of texts")
    suffix = path.suffix.lower()
    kind = FORMATS.get(suffix) or ("txt" if suffix in (".txt", "") else None)
    if kind is None:
        raise RnnclfError(f"--pool {path}: use .csv, .tsv, .jsonl or .txt (one text per line)")
    return Pool(path, kind, text_field, label_field)
