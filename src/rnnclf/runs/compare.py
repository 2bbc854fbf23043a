"""Compare finished runs side by side: the config keys that differ, and the scores, time and size of each.

Reads only config.yaml and metrics.json (YAML and JSON), so it never imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rnnclf.config.loading import config_to_dict, parse_config
from rnnclf.errors import RnnclfError
from rnnclf.files import CONFIG, ENSEMBLE, LANGUAGE_MODEL, METRICS, STATE, write_atomic

# the keys shown for a single run, when there is nothing to compare
MAIN_KEYS = (
    "data.dataset",
    "data.train",
    "tokenizer.kind",
    "embedding.dim",
    "embedding.pretrained",
    "model.encoder",
    "model.hidden_size",
    "model.num_layers",
    "model.bidirectional",
    "model.pooling",
    "train.epochs",
    "train.batch_size",
    "train.optimizer",
    "train.lr",
)
NOT_COMPARED = ("output.run_dir",)  # always differs; the run column names the run


def read_run(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The flattened config (section.key -> value) and the metrics summary of a finished run; of an ensemble,
    its first member's config with ensemble.members, and the ensemble's metrics."""
    if not path.exists():
        raise RnnclfError(f"{path}: run directory not found")
    if not path.is_dir():
        raise RnnclfError(f"{path}: not a directory; pass the run directory that `rnnclf train` wrote")
    if (path / ENSEMBLE).exists():
        return read_ensemble(path)
    if not (path / CONFIG).exists():
        raise RnnclfError(f"{path}: not a run directory (no {CONFIG})")
    if not (path / METRICS).exists():
        command = "pretrain" if (path / LANGUAGE_MODEL).exists() else "train"
        how = (
            f"continue it: rnnclf {command} --resume {path}"
            if (path / STATE).exists()
            else "nothing saved to continue from"
        )
        raise RnnclfError(f"{path}: no {METRICS}; training has not finished ({how})")
    try:
        raw = yaml.safe_load((path / CONFIG).read_text(encoding="utf-8"))
        metrics = json.loads((path / METRICS).read_text(encoding="utf-8"))
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError):
        raise RnnclfError(f"{path}: unreadable {CONFIG} or {METRICS}; the run directory is damaged") from None
    if not isinstance(raw, dict) or not isinstance(metrics, dict):
        raise RnnclfError(f"{path}: unreadable {CONFIG} or {METRICS}; the run directory is damaged")
    config = config_to_dict(parse_config(raw, path / CONFIG))  # defaults filled, as a newer rnnclf sees it
    flat = {f"{section}.{key}": value for section, keys in config.items() for key, value in keys.items()}
    return flat, metrics


def read_ensemble(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        metrics = json.loads((path / METRICS).read_text(encoding="utf-8"))
        first = Path(metrics["members"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise RnnclfError(f"{path}: unreadable {METRICS}; the ensemble directory is damaged") from None
    config, _ = read_run(first)
    return config | {"ensemble.members": len(metrics["members"])}, metrics


def compare_runs(paths: Sequence[Path | str]) -> list[dict[str, Any]]:
    """One row per run: its path, the config keys that differ between the runs (the main keys for one run),
    best epoch, validation score(s), test accuracy / macro F1 when any run has a test split (micro / macro F1 for
    multi-label runs), time, parameters."""
    if not paths:
        raise RnnclfError("give at least one run directory")
    runs = [(str(path), *read_run(Path(path))) for path in paths]
    keys = list(dict.fromkeys(key for _, config, _ in runs for key in config))
    if len(runs) == 1:
        shown = [key for key in MAIN_KEYS if runs[0][1].get(key) is not None]
    else:
        shown = [
            key
            for key in keys
            if key not in NOT_COMPARED and any(config.get(key) != runs[0][1].get(key) for _, config, _ in runs)
        ]
    metrics_used = list(dict.fromkeys(metrics.get("metric", "accuracy") for _, _, metrics in runs))
    with_test = any(metrics.get("test") for _, _, metrics in runs)
    # multi-label runs compare by micro and macro F1 (at their thresholds); single-label by accuracy and macro F1
    multi_label = any(metrics.get("multi_label") for _, _, metrics in runs)
    if multi_label:
        metrics_used = list(dict.fromkeys(["micro_f1", "macro_f1", *metrics_used]))
    if all(metrics.get("kind") == "language_model" for _, _, metrics in runs):  # perplexity only
        metrics_used = []
    test_scores = ("micro_f1", "macro_f1") if multi_label else ("accuracy", "macro_f1")
    rows = []
    for path, config, metrics in runs:
        valid, test = metrics.get("valid") or {}, metrics.get("test") or {}
        row: dict[str, Any] = {"run": path, **{key: config.get(key) for key in shown}}
        row["best_epoch"] = metrics.get("best_epoch")
        row["epochs_run"] = metrics.get("epochs_run")
        row.update({f"valid_{metric}": valid.get(metric) for metric in metrics_used})
        if any(m.get("kind") == "language_model" for _, _, m in runs):  # rnnclf pretrain's runs
            row["valid_perplexity"] = metrics.get("valid_perplexity")
        if with_test:
            row.update({f"test_{name}": test.get(name) for name in test_scores})
            baseline = (metrics.get("linear_baseline") or {}).get("test") or {}
            row["test_linear_baseline"] = baseline.get(test_scores[0])
        row["train_seconds"] = metrics.get("train_seconds")
        row["parameters"] = (metrics.get("parameters") or {}).get("trainable")
        rows.append(row)
    return rows


def cell(key: str, value: Any) -> str:
    """A value as a person reads it: scores to 4 places, counts with separators, YAML-style true / null."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if key == "train_seconds":
        return f"{value:.1f}s" if value < 60 else f"{int(value // 60)}m {int(value % 60):02d}s"
    if key == "parameters":
        return f"{value:,}"
    if isinstance(value, float) and key.startswith(("valid_", "test_")):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def is_numeric(rows: list[dict[str, Any]], key: str) -> bool:
    return all(
        row[key] is None or (isinstance(row[key], (int, float)) and not isinstance(row[key], bool)) for row in rows
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns for a terminal; numbers right-aligned."""
    columns = list(rows[0])
    cells = [[cell(key, row[key]) for key in columns] for row in rows]
    widths = [max(len(key), *(len(line[i]) for line in cells)) for i, key in enumerate(columns)]
    numeric = [is_numeric(rows, key) for key in columns]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(columns), *(line(values) for values in cells)])


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """A GitHub Markdown table: numbers right-aligned, `|` in values escaped."""
    columns = list(rows[0])
    numeric = [is_numeric(rows, key) for key in columns]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(key, row[key]).replace("|", "\\|") for key in columns) + " |")
    return "\n".join(lines)


def format_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False)


def write_markdown(rows: list[dict[str, Any]], path: Path) -> None:
    """Atomically into a file; in place into a device or pipe (/dev/stdout), which cannot be replaced."""
    data = (format_markdown(rows) + "\n").encode("utf-8")
    if path.exists() and not path.is_file():  # /dev/stdout, a named pipe: write into it
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise RnnclfError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
    else:
        write_atomic(path, data)
