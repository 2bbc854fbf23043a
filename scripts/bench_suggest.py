"""rnnclf suggest over a pool of 100,000 texts, whole process (issue 26's target: under 2 minutes on 2 cores), on
an idle machine and beside a second busy process (a state users are in): `rnnclf suggest` run as a user runs it,
each strategy, timed from start to exit.

    python -m scripts.bench_suggest --run results/runs/r8-seed0 --texts 100000

The pool: windows of 50 to 200 consecutive words of the 20 Newsgroups training posts (news-like English the R8
model has not seen; every window a distinct text, so that every one is scored), written once to results/runs/bench/pool<N>.txt. Writes
results/active/bench_suggest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_pool(count: int, seed: int = 0) -> Path:
    from rnnclf.data.builtin import fetch

    path = ROOT / "results" / "runs" / "bench" / f"pool{count}-distinct.txt"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    posts = [json.loads(line)["text"].split() for line in Path(fetch("20ng")["train"]).read_text().splitlines()]
    posts = [words for words in posts if len(words) >= 50]
    rng, lines, seen = random.Random(seed), [], set()
    while len(lines) < count:  # distinct texts (after the data check's normalisation): none is skipped as a repeat
        words = rng.choice(posts)
        size = min(rng.randint(50, 200), len(words))
        start = rng.randint(0, len(words) - size)
        text = " ".join(words[start : start + size])
        if text.casefold() not in seen:
            seen.add(text.casefold())
            lines.append(text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def busy() -> subprocess.Popen:
    """A second process keeping one core busy (pure Python arithmetic)."""
    return subprocess.Popen([sys.executable, "-c", "while True:\n    sum(i * i for i in range(10000))"])


def timed(run: Path, pool: Path, strategy: str, k: int) -> dict:
    out = ROOT / "results" / "runs" / "bench" / f"suggested-{strategy}.txt.jsonl"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "rnnclf", "suggest", str(run), "--pool", str(pool), "--k", str(k)]
    command += ["--strategy", strategy, "--out", str(out), "--format", "json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    out.unlink(missing_ok=True)
    return {"strategy": strategy, "seconds": round(seconds, 1), "summary": json.loads(result.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=ROOT / "results" / "runs" / "r8-seed0")
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--strategies", default="margin,diverse,random")
    args = parser.parse_args()
    pool = make_pool(args.texts)
    rows = []
    for state in ("idle", "beside a busy process"):
        other = busy() if state != "idle" else None
        try:
            for strategy in args.strategies.split(","):
                row = timed(args.run, pool, strategy, args.k) | {"state": state}
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            if other is not None:
                other.kill()
    machine = {"cores": os.cpu_count(), "processor": platform.processor() or platform.machine()}
    report = {"run": str(args.run), "pool": str(pool), "texts": args.texts, "k": args.k, "machine": machine}
    out = ROOT / "results" / "active" / "bench_suggest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report | {"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
