"""rnnclf data check's shared pieces and the row findings: the splits as read, the flat rows, a finding and its
example rows; empty texts, duplicates, conflicting labels, exact and near-duplicate overlap between splits.

Reads every row (empty texts and missing labels are findings here, not errors) and normalises each text once.
Linear in the data: one dict and a few numpy sorts per pass. Bad rows (invalid JSON, malformed CSV) stay errors
naming the file and line. labels.py and tokens.py add their findings; checker.py puts the report together.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnclf.check import minhash
from rnnclf.config.schema import Config
from rnnclf.data.corpus import carve_seed, data_fields, label_format, stratified_split
from rnnclf.data.readers import FIELDS_HINT, LabelFormat, Split, check_file, detect_format, raw_rows
from rnnclf.errors import RnnclfError

NORMALISATION = "Unicode NFKC, case folded, runs of whitespace as one space, trimmed"
EXAMPLES = 3  # example rows per finding
FILES_FIELDS_HINT = "choose them with --text-field / --label-field"  # data check --data FILE
IMBALANCE = 10  # largest / smallest class count in train at or above which imbalance is a finding
SERIOUS = (
    "empty_texts",
    "missing_labels",
    "too_few_labels",
    "unseen_labels",
    "conflicting_labels",
    "exact_overlap",
    "near_overlap",
)


@dataclass
class CheckSplit:
    """One split's rows as read, problems included: text "" when empty, label None when missing."""

    name: str
    file: str
    texts: list[str]
    labels: list  # str, or a sorted tuple of labels (multi-label), or None
    lines: np.ndarray  # int64: the line of the file where each row starts
    carved: str = ""  # how a validation split was carved from train, if it was

    def __len__(self) -> int:
        return len(self.texts)


def read_rows(
    path: Path, fmt: str, text_field: str, label_field: str, labels: LabelFormat, hint: str = FIELDS_HINT
) -> tuple:
    """(texts, labels, lines) of every row of a data file; a row that cannot be read is an error naming it."""
    path = Path(path)
    check_file(path)
    kind = detect_format(path, fmt)
    texts, parsed, lines = [], [], []
    for line, text, label in raw_rows(path, kind, text_field, label_field, hint):
        texts.append(text if isinstance(text, str) else "")
        parsed.append(_parse_label(labels, label, kind, path, line, label_field))
        lines.append(line)
    if not lines:
        raise RnnclfError(f"{path}: no rows of data")
    return texts, parsed, np.asarray(lines, dtype=np.int64)


def _parse_label(labels: LabelFormat, value: object, kind: str, path: Path, line: int, field: str):
    try:
        return labels.parse(value, kind)
    except ValueError as exc:
        raise RnnclfError(f"{path}: line {line}: the label field '{field}' {exc}") from None


def config_splits(config: Config) -> list[CheckSplit]:
    """train / valid / test as training reads them; without a valid file, valid is carved from train the same
    way (stratified, train.seed, data.valid_fraction) from the rows training could use."""
    data = config.data
    fmt, text_field, label_field = data_fields(data)
    if data.dataset is not None:
        from rnnclf.data.builtin import fetch

        files = fetch(data.dataset)
    else:
        files = {name: path for name, path in (("train", data.train), ("valid", data.valid), ("test", data.test))}
    splits = [
        CheckSplit(name, str(path), *read_rows(path, fmt, text_field, label_field, label_format(data)))
        for name, path in files.items()
        if path is not None
    ]
    if not any(split.name == "valid" for split in splits):
        splits[1:1] = carve_valid(splits[0], config)
    return splits


def carve_valid(train: CheckSplit, config: Config) -> list[CheckSplit]:
    """Split `train` in place into its training part and the carved validation part (returned)."""
    usable = np.fromiter(
        (bool(text.strip()) and label is not None for text, label in zip(train.texts, train.labels, strict=True)),
        dtype=bool,
        count=len(train),
    )
    index = np.flatnonzero(usable)
    if len(index) < 2:
        return []
    labels = [train.labels[i] for i in index]
    _, held = stratified_split(
        Split([""] * len(index), labels, train.file, index),
        config.data.valid_fraction,
        carve_seed(config.data, config.train.seed),
        config.data.multi_label,
    )
    mask = np.zeros(len(train), dtype=bool)
    mask[np.asarray(held.rows, dtype=np.int64)] = True
    valid = _take(train, mask, "valid")
    seed = "train.seed" if config.data.valid_seed is None else "data.valid_seed"
    valid.carved = f"data.valid_fraction {config.data.valid_fraction} of train, {seed} {carve_seed(config.data, config.train.seed)}"
    kept = _take(train, ~mask, "train")
    train.texts, train.labels, train.lines = kept.texts, kept.labels, kept.lines
    return [valid]


def _take(split: CheckSplit, mask: np.ndarray, name: str) -> CheckSplit:
    picked = np.flatnonzero(mask).tolist()
    return CheckSplit(
        name, split.file, [split.texts[i] for i in picked], [split.labels[i] for i in picked], split.lines[mask]
    )


def file_splits(paths: list[Path], fmt: str, text_field: str, label_field: str, labels: LabelFormat) -> list:
    """Splits named by their files (the first is the training split); a missing column or key names the options
    that choose them (--text-field, --label-field)."""
    names = [Path(path).stem for path in paths]
    names = [name if names.count(name) == 1 else str(path) for name, path in zip(names, paths, strict=True)]
    return [
        CheckSplit(name, str(path), *read_rows(path, fmt, text_field, label_field, labels, FILES_FIELDS_HINT))
        for name, path in zip(names, paths, strict=True)
    ]


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass
class Rows:
    """Every row of every split, flat, with the keys the findings compare."""

    splits: list[CheckSplit]
    split: np.ndarray  # split index of each row
    position: np.ndarray  # row index within its split
    normal: list[str]  # normalised text
    group: np.ndarray  # the first row (flat index) with the same normalised text
    label: np.ndarray  # the first row with the same label (-1: missing)
    empty: np.ndarray  # bool


def flatten(splits: list[CheckSplit]) -> Rows:
    sizes = [len(split) for split in splits]
    normal = [normalise(text) for split in splits for text in split.texts]
    first: dict = {}
    group = np.fromiter(map(first.setdefault, normal, itertools.count()), dtype=np.int64, count=len(normal))
    labels = itertools.chain.from_iterable(split.labels for split in splits)
    seen: dict = {}
    label = np.fromiter(
        (-1 if value is None else seen.setdefault(value, i) for i, value in enumerate(labels)),
        dtype=np.int64,
        count=len(normal),
    )
    return Rows(
        splits,
        np.repeat(np.arange(len(splits)), sizes),
        np.concatenate([np.arange(size) for size in sizes]),
        normal,
        group,
        label,
        np.fromiter((not text for text in normal), dtype=bool, count=len(normal)),
    )


def example(rows: Rows, index: int, **extra) -> dict:
    """Row `index` of the flat rows as a finding's example."""
    return split_example(rows.splits[rows.split[index]], int(rows.position[index]), **extra)


def split_example(split: CheckSplit, at: int, **extra) -> dict:
    """Row `at` of a split as a finding's example: split, file, line, text (shortened) and label."""
    text = split.texts[at]
    label = split.labels[at]
    return {
        "split": split.name,
        "file": split.file,
        "line": int(split.lines[at]),
        "text": text if len(text) <= 80 else text[:77] + "...",
        "label": list(label) if isinstance(label, tuple) else label,
        **extra,
    }


def finding(kind: str, message: str, count: int, examples: list[dict], severity: str | None = None) -> dict:
    severity = severity or ("serious" if kind in SERIOUS else "warning")
    return {"kind": kind, "severity": severity, "message": message, "count": int(count), "examples": examples}


def row_findings(rows: Rows) -> list[dict]:
    """Empty texts and missing labels, per split."""
    findings = []
    for code, split in enumerate(rows.splits):
        here = rows.split == code
        for kind, mask, what in (
            ("empty_texts", here & rows.empty, "empty or whitespace-only texts"),
            ("missing_labels", here & (rows.label < 0), "rows without a label"),
        ):
            index = np.flatnonzero(mask)
            if index.size:
                examples = [example(rows, i) for i in index[:EXAMPLES]]
                findings.append(finding(kind, f"{split.name}: {index.size:,} {what}", index.size, examples))
    return findings


def duplicate_findings(rows: Rows) -> list[dict]:
    """Repeated texts within a split: each copy after the first counts once."""
    findings = []
    for code, split in enumerate(rows.splits):
        index = np.flatnonzero((rows.split == code) & ~rows.empty)
        _, first = np.unique(rows.group[index], return_index=True)
        repeat = np.setdiff1d(index, index[first], assume_unique=True)
        if repeat.size:
            first_of = {int(rows.group[i]): int(i) for i in index[first]}
            examples = [
                example(rows, i, **_other(rows, first_of[int(rows.group[i])], "same_as")) for i in repeat[:EXAMPLES]
            ]
            message = f"{split.name}: {repeat.size:,} repeated texts (after normalisation)"
            findings.append(finding("duplicates", message, repeat.size, examples))
    return findings


def _other(rows: Rows, index: int, prefix: str) -> dict:
    """Where another row is, for an example that names it: {prefix}_split, _file and _line."""
    split = rows.splits[rows.split[index]]
    return {f"{prefix}_split": split.name, f"{prefix}_file": split.file, f"{prefix}_line": _line(rows, index)}


def _line(rows: Rows, index: int) -> int:
    return int(rows.splits[rows.split[index]].lines[rows.position[index]])


def conflict_findings(rows: Rows) -> list[dict]:
    """The same normalised text with different labels, anywhere in the data."""
    usable = np.flatnonzero(~rows.empty & (rows.label >= 0))
    pairs = np.unique(np.stack([rows.group[usable], rows.label[usable]], axis=1), axis=0)
    texts, labels_per_text = np.unique(pairs[:, 0], return_counts=True)
    conflicted = texts[labels_per_text > 1]
    if not conflicted.size:
        return []
    involved = usable[np.isin(rows.group[usable], conflicted)]
    examples = []
    for group in conflicted[:EXAMPLES]:  # the first row of each label the text has
        members = involved[rows.group[involved] == group]
        _, first = np.unique(rows.label[members], return_index=True)
        examples += [example(rows, i) for i in members[np.sort(first)]]
    message = f"{conflicted.size:,} texts appear with different labels ({involved.size:,} rows)"
    return [finding("conflicting_labels", message, conflicted.size, examples)]


def overlap_findings(rows: Rows) -> tuple[list[dict], dict]:
    """Each later split against each earlier one: texts found exactly (after normalisation), then near-duplicates
    among the rest. Every later split is matched against an earlier one at once (one sort per band). Also returns
    the MinHash settings, for the report."""
    keep = np.flatnonzero(~rows.empty)  # the rows hashed, in order: positions below index `keep`
    shingled = minhash.shingles([rows.normal[i] for i in keep])
    signature = minhash.signatures(shingled)
    keys = minhash.band_keys(signature)
    split_of = rows.split[keep]
    findings = []
    for earlier in range(len(rows.splits) - 1):
        references, queries = np.flatnonzero(split_of == earlier), np.flatnonzero(split_of > earlier)
        groups, first = np.unique(rows.group[keep[references]], return_index=True)
        exact = np.isin(rows.group[keep[queries]], groups)
        near = minhash.near_duplicates(shingled, signature, keys, queries[~exact], references)
        for later in range(earlier + 1, len(rows.splits)):
            copies = keep[queries[exact & (split_of[queries] == later)]]
            matches = keep[references[first[np.searchsorted(groups, rows.group[copies[:EXAMPLES]])]]]
            findings += _exact_finding(rows, copies, matches, later, earlier)
            close = {int(keep[q]): (int(keep[r]), j) for q, (r, j) in near.items() if split_of[q] == later}
            findings += _near_finding(rows, close, later, earlier)
    return findings, minhash.settings()


def _share(rows: Rows, count: int, split: int) -> str:
    share = count / max(int((rows.split == split).sum()), 1)
    return f"{count:,} text{'' if count == 1 else 's'} ({'<0.1%' if share < 0.001 else f'{share:.1%}'})"


def _exact_finding(rows: Rows, copies: np.ndarray, matches: np.ndarray, later: int, earlier: int) -> list[dict]:
    if not copies.size:
        return []
    examples = [example(rows, i, **_other(rows, m, "same_as")) for i, m in zip(copies, matches, strict=False)]
    message = (
        f"{rows.splits[later].name}: {_share(rows, copies.size, later)} are also in {rows.splits[earlier].name} "
        "(exact after normalisation)"
    )
    return [finding("exact_overlap", message, copies.size, examples)]


def _near_finding(rows: Rows, close: dict[int, tuple[int, float]], later: int, earlier: int) -> list[dict]:
    """`close`: row -> (its nearest row in the earlier split, exact Jaccard)."""
    if not close:
        return []
    examples = [
        example(rows, q, **_other(rows, r, "near"), near_text=_short(rows, r), jaccard=round(j, 3))
        for q, (r, j) in itertools.islice(close.items(), EXAMPLES)
    ]
    message = (
        f"{rows.splits[later].name}: {_share(rows, len(close), later)} are near-duplicates of "
        f"{rows.splits[earlier].name} texts (Jaccard >= {minhash.THRESHOLD}, not exact)"
    )
    return [finding("near_overlap", message, len(close), examples)]


def _short(rows: Rows, index: int) -> str:
    return example(rows, index)["text"]
