"""Do two checkouts of rnnclf train the same weights and metrics? For a restructure that must not change behaviour.

    # the old code in a worktree, then this one (one thread each, so the sums run in one order)
    git worktree add /tmp/old <commit>
    .venv/bin/python scripts/same_results.py run --src /tmp/old/src --out /tmp/before
    .venv/bin/python scripts/same_results.py run --src src --out /tmp/after
    .venv/bin/python scripts/same_results.py compare /tmp/before /tmp/after
    .venv/bin/python scripts/same_results.py retrain-trials /tmp/before/tune --src src --out /tmp/retrained

`run` trains the quickstart (configs/quickstart.yaml), a multi-label run (configs/reuters21578.yaml, 3 epochs,
hidden 64), a language model and a classifier fine-tuned from it (configs/r8-lm.yaml 2 epochs,
configs/r8-pretrained.yaml 3 epochs), and `tune --budget 2m` (the quickstart at max_length 100, 3 epochs), and
writes OUT/digests.json: the sha256 of each run's weights, tokenizer, labels, thresholds and calibration, and its
metrics lines and summary without their timings. `compare` says identical or DIFFERENT for each. A tune's trials
after trial 0 depend on its clock and process id, so `retrain-trials` trains each trial's config of the old study
again with --src and compares its metrics lines (as far as the trial ran) and its weights (where it kept them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
TIMING = {"epoch_seconds", "valid_seconds", "tokens_per_s", "train_seconds", "started", "finished", "seconds"}
HASHED = ("model.safetensors", "tokenizer.json", "labels.json", "thresholds.json", "calibration.json")
ONE_THREAD = ["--set", "train.num_threads=1"]


def rnnclf(src: Path, cwd: Path, *args: str) -> None:
    print("+ rnnclf", *args, flush=True)
    env = dict(os.environ, PYTHONPATH=str(src.resolve()))
    subprocess.run([sys.executable, "-m", "rnnclf", *args], env=env, check=True, cwd=cwd)


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest_run(run: Path) -> dict:
    found = {name: sha256(run / name) for name in HASHED if (run / name).exists()}
    if (run / "metrics.jsonl").exists():
        lines = (run / "metrics.jsonl").read_text().splitlines()
        found["metrics.jsonl"] = [without_timings(json.loads(line)) for line in lines]
    if (run / "metrics.json").exists():
        found["metrics.json"] = without_timings(json.loads((run / "metrics.json").read_text()))
    return found


def run_jobs(src: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    rnnclf(src, out, "train", "--config", str(CONFIGS / "quickstart.yaml"), "--run-dir", "quickstart", *ONE_THREAD)
    multi = ["--set", "train.epochs=3", "--set", "model.hidden_size=64"]
    rnnclf(
        src,
        out,
        "train",
        "--config",
        str(CONFIGS / "reuters21578.yaml"),
        "--run-dir",
        "multilabel",
        *ONE_THREAD,
        *multi,
    )
    lm = ["--set", "train.epochs=2", "--set", "data.max_length=300"]
    rnnclf(src, out, "pretrain", "--config", str(CONFIGS / "r8-lm.yaml"), "--run-dir", "lm", *ONE_THREAD, *lm)
    fine = ["--set", "train.epochs=3", "--set", f"model.init={out / 'lm'}"]
    rnnclf(
        src, out, "train", "--config", str(CONFIGS / "r8-pretrained.yaml"), "--run-dir", "finetuned", *ONE_THREAD, *fine
    )
    small = ["--set", "train.epochs=3", "--set", "data.max_length=100", "--format", "json"]
    rnnclf(
        src,
        out,
        "tune",
        "--config",
        str(CONFIGS / "quickstart.yaml"),
        "--out",
        "tune",
        "--budget",
        "2m",
        *ONE_THREAD,
        *small,
    )
    digests = {name: digest_run(out / name) for name in ("quickstart", "multilabel", "lm", "finetuned")}
    trials = sorted((out / "tune" / "trials").iterdir())
    digests["tune"] = {t.name: digest_run(t) | {"config": (t / "config.yaml").read_text()} for t in trials}
    (out / "digests.json").write_text(json.dumps(digests, indent=1, sort_keys=True))
    return digests


def compare(before: Path, after: Path) -> bool:
    old, new = (json.loads((folder / "digests.json").read_text()) for folder in (before, after))
    pairs = [(job, old[job], new[job]) for job in ("quickstart", "multilabel", "lm", "finetuned")]
    pairs.append(("tune trial 0", old["tune"]["trial-0000"], new["tune"]["trial-0000"]))
    same = True
    for job, a, b in pairs:
        for key in sorted(set(a) | set(b)):
            same &= a.get(key) == b.get(key)
            print(f"{job:13s} {key:18s} {'identical' if a.get(key) == b.get(key) else 'DIFFERENT'}")
    print(f"tune: {len(old['tune'])} trials before, {len(new['tune'])} after (the later ones depend on the clock)")
    return same


def retrain_trials(study: Path, src: Path, out: Path) -> bool:
    out.mkdir(parents=True, exist_ok=True)
    same = True
    for trial in sorted((study / "trials").iterdir()):
        target = out / trial.name
        if not target.exists():
            rnnclf(src, out, "train", "--config", str(trial / "config.yaml"), "--run-dir", str(target))
        old, new = digest_run(trial), digest_run(target)
        ran = len(old["metrics.jsonl"])
        lines = old["metrics.jsonl"] == new["metrics.jsonl"][:ran]
        weights = "not kept"
        if "model.safetensors" in old and ran == len(new["metrics.jsonl"]):
            weights = "identical" if old["model.safetensors"] == new["model.safetensors"] else "DIFFERENT"
        same &= lines and weights != "DIFFERENT"
        print(
            f"{trial.name}: {ran} of {len(new['metrics.jsonl'])} epochs, metrics lines "
            f"{'identical' if lines else 'DIFFERENT'}, weights {weights}"
        )
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    run.add_argument("--src", type=Path, required=True)
    run.add_argument("--out", type=Path, required=True)
    both = commands.add_parser("compare")
    both.add_argument("before", type=Path)
    both.add_argument("after", type=Path)
    again = commands.add_parser("retrain-trials")
    again.add_argument("study", type=Path)
    again.add_argument("--src", type=Path, required=True)
    again.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "run":
        run_jobs(args.src, args.out.resolve())
        return 0
    same = (
        compare(args.before, args.after)
        if args.command == "compare"
        else retrain_trials(args.study, args.src, args.out.resolve())
    )
    print("ALL IDENTICAL" if same else "SOME DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
