"""Choose a recipe on the validation split: train a config and variants of it (seed 0) and tabulate each one's
validation score and time, best first. The test split is never shown here: it is read once, by scripts/results.py,
for the recipe chosen.

    .venv/bin/python scripts/choose_variants.py --config configs/20ng.yaml --name 20ng \\
        --variant "wide: model.wide=true" --variant "wide, attention: model.wide=true model.pooling=attention"

Runs go to OUT/runs/<name>-<variant>/ (a finished run is reused), the table to OUT/<name>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'name: key=value key=value' -> (name, overrides); 'name:' alone is the config as it is."""
    name, _, overrides = text.partition(":")
    if not name.strip():
        raise SystemExit(f"--variant {text!r}: give it a name, then a colon and its key=value overrides")
    return name.strip(), overrides.split()


def run_variant(config: Path, run_dir: Path, overrides: list[str]) -> dict:
    """Train (unless it finished before) and return the figures a choice may use: validation, time, sizes."""
    wall = None
    if not (run_dir / "metrics.json").exists():
        command = [sys.executable, "-m", "rnnclf", "train", "--config", str(config), "--run-dir", str(run_dir)]
        for item in overrides:
            command += ["--set", item]
        print("+", " ".join(command), flush=True)
        started = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - started
    summary = json.loads((run_dir / "metrics.json").read_text())
    baseline = (summary.get("linear_baseline") or {}).get("valid") or {}
    return {
        "overrides": overrides,
        "metric": summary["metric"],
        "valid": {key: value for key, value in summary["valid"].items() if isinstance(value, int | float)},
        "linear_baseline_valid": baseline,
        "best_epoch": summary["best_epoch"],
        "train_seconds": summary["train_seconds"],
        "process_seconds": wall,
    }


def table(name: str, config: Path, rows: dict[str, dict]) -> str:
    metric = next(iter(rows.values()))["metric"]
    ranked = sorted(rows, key=lambda v: rows[v]["valid"][metric], reverse=metric != "loss")
    lines = [
        f"# {name}: variants of {config.relative_to(ROOT) if config.is_relative_to(ROOT) else config} on validation",
        "",
        f"Seed 0, chosen on valid {metric} only (test is not read here). Made by scripts/choose_variants.py.",
        "",
        f"| variant | valid {metric} | valid macro F1 | best epoch | train seconds | overrides |",
        "|---|---|---|---|---|---|",
    ]
    for variant in ranked:
        row = rows[variant]
        lines.append(
            f"| {variant} | {row['valid'][metric]:.4f} | {row['valid'].get('macro_f1', float('nan')):.4f} | "
            f"{row['best_epoch']} | {row['train_seconds']:.0f} | {' '.join(row['overrides']) or '(as it is)'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--variant", action="append", default=[], help="'name: key=value ...' (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "variants")
    args = parser.parse_args()
    known = args.out / f"{args.name}.json"
    rows = json.loads(known.read_text()) if known.exists() else {}
    for text in args.variant:
        variant, overrides = parse_variant(text)
        slug = re.sub(r"[^a-z0-9]+", "-", variant.lower()).strip("-")
        rows[variant] = run_variant(args.config, args.out / "runs" / f"{args.name}-{slug}", overrides)
        args.out.mkdir(parents=True, exist_ok=True)
        known.write_text(json.dumps(rows, indent=2))
        (args.out / f"{args.name}.md").write_text(table(args.name, args.config.resolve(), rows))
    print((args.out / f"{args.name}.md").read_text())


if __name__ == "__main__":
    main()
