"""rnnclf's runs for scripts/results.py: each corpus's recipes (configs) and the `rnnclf train` / `pretrain`
commands, each run reused when it finished before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def recipes(corpus: str) -> dict[str, Path]:
    """The from-scratch config and, where configs/<corpus>-lm.yaml exists, the pretrained one."""
    configs = ROOT / "configs"
    best = configs / f"{corpus}.yaml"
    if not (configs / f"{corpus}-lm.yaml").exists():
        return {"scratch": best}
    fine_tunes = "init:" in best.read_text(encoding="utf-8")
    scratch = configs / f"{corpus}-scratch.yaml" if fine_tunes else best
    return {"scratch": scratch, "pretrained": best if fine_tunes else configs / f"{corpus}-pretrained.yaml"}


def run_command(run_dir: Path, command: list[str]) -> dict:
    """Run an rnnclf command into run_dir unless it finished there before; its metrics.json."""
    if not (run_dir / "metrics.json").exists():
        if run_dir.exists():
            raise SystemExit(f"{run_dir} exists without metrics.json (an interrupted run?); delete it and rerun")
        command = [sys.executable, "-m", "rnnclf", *command, "--run-dir", str(run_dir)]
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    return json.loads((run_dir / "metrics.json").read_text())


def run_rnnclf(corpus: str, seed: int, out: Path, recipe: str = "scratch") -> dict:
    config = recipes(corpus)[recipe]
    if recipe == "scratch":
        return run_command(
            out / "runs" / f"{corpus}-seed{seed}", ["train", "--config", str(config), "--set", f"train.seed={seed}"]
        )
    language_model = out / "runs" / f"{corpus}-lm"
    pretrained = run_command(language_model, ["pretrain", "--config", str(ROOT / "configs" / f"{corpus}-lm.yaml")])
    command = ["train", "--config", str(config), "--set", f"train.seed={seed}", "--set", f"model.init={language_model}"]
    return run_command(out / "runs" / f"{corpus}-pretrained-seed{seed}", command) | {"language_model": pretrained}
