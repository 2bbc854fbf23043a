"""rnnclf data check: the whole report, from the inputs (a config, or --data files) to the findings, serious first.

Imports the findings of findings.py, labels.py and tokens.py; none of them imports this module.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rnnclf.check.findings import (
    NORMALISATION,
    CheckSplit,
    config_splits,
    conflict_findings,
    duplicate_findings,
    file_splits,
    flatten,
    overlap_findings,
    row_findings,
)
from rnnclf.check.labels import label_counts, label_findings, multi_label_stats, no_label_findings
from rnnclf.check.tokens import run_tokenizer, token_report
from rnnclf.config.loading import apply_overrides, load_config, parse_config
from rnnclf.config.rules import check_data_files
from rnnclf.config.schema import Config
from rnnclf.data.corpus import label_format
from rnnclf.errors import RnnclfError

SEVERITY_ORDER = {"serious": 0, "warning": 1, "info": 2}


def check_data(splits: list[CheckSplit], config: Config, source: dict) -> dict:
    """The whole report: settings, label counts, findings (serious first), tokens, multi-label statistics."""
    multi_label = config.data.multi_label
    with ThreadPoolExecutor(1) as pool:  # the tokenizer fits in Rust (no GIL) while the rest runs here
        fitting = pool.submit(run_tokenizer, config, splits[0])
        rows = flatten(splits)
        findings = (
            row_findings(rows)
            + label_findings(splits, multi_label, config.train.class_weights != "none")
            + conflict_findings(rows)
        )
        findings += duplicate_findings(rows)
        overlap, near_settings = overlap_findings(rows)
        del rows
        tokenizer, tokenizer_source = fitting.result()
    tokens, truncated = token_report(splits, config, tokenizer, tokenizer_source)
    report = {
        "source": source,
        "splits": [
            {"name": split.name, "file": split.file, "rows": len(split)}
            | ({"carved": split.carved} if split.carved else {})
            for split in splits
        ],
        "settings": {"normalisation": NORMALISATION, "near_duplicates": near_settings, "seed": config.train.seed},
        "labels": {split.name: dict(label_counts(split, multi_label).most_common()) for split in splits},
    }
    findings += overlap + truncated
    if multi_label:
        report["multi_label"] = multi_label_stats(splits)
        findings += no_label_findings(splits, report["multi_label"])
    report["findings"] = sorted(findings, key=lambda item: SEVERITY_ORDER[item["severity"]])
    report["serious"] = sum(item["severity"] == "serious" for item in findings)
    report["tokens"] = tokens
    return report


def check_inputs(
    config_path: Path | None, data: list[Path], overrides: list[str], fields: dict
) -> tuple[list[CheckSplit], Config, dict]:
    """The splits to check and the settings to check them with: a config's, or --data files with the config
    defaults (`fields`: text_field, label_field, multi_label given on the command line) and --set overrides."""
    if (config_path is None) == (not data):
        raise RnnclfError("give --config FILE, or --data FILE (repeatable) for files without a config; not both")
    if config_path is not None:
        if fields:
            raise RnnclfError(f"--{next(iter(fields)).replace('_', '-')} is for --data; with --config set data.* keys")
        config = load_config(config_path, overrides)
        return config_splits(config), config, {"config": str(config_path)}
    files = [Path(path) for path in data]
    refuse_repeated_files(files)
    check_data_files(overrides)  # a --set that the files would silently replace
    raw = apply_overrides({"data": {"train": str(files[0]), **fields}}, overrides)
    config = parse_config(raw, "--data")
    d = config.data
    splits = file_splits(files, d.format, d.text_field, d.label_field, label_format(d))
    return splits, config, {"data": [str(path) for path in files]}


def refuse_repeated_files(files: list[Path]) -> None:
    """The same file given twice would be two splits with one name, all overlap; refused, naming it."""
    seen: set[Path] = set()
    for path in files:
        resolved = path.resolve()
        if resolved in seen:
            raise RnnclfError(f"--data {path}: the same file ({resolved}) is given twice; give each file once")
        seen.add(resolved)
