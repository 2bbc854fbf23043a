"""Section distributed: `rnnclf train --nproc 1` against `--nproc 2` (torchrun, gloo) on the quickstart workload,
one epoch, the same cores shared out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rnnclf.config.schema import Config

from .common import Plan, describe, num, quickstart_config, run_child, say, tail


def bench_distributed(plan: Plan, folder: Path) -> dict[str, Any]:
    """Section 8: `rnnclf train --nproc N` for N = 1 and 2 on the quickstart workload (one epoch): the same cores
    shared out, 2 threads in one process or 1 thread in each of two. Throughput = all processes' tokens / s."""
    config = quickstart_config(plan).model_dump(mode="json")
    config["train"] |= {"epochs": 1, "device": "cpu"}
    if plan.quick:
        config["embedding"]["dim"], config["model"]["hidden_size"] = 16, 16
    config_path = folder / "distributed.json"  # JSON is YAML
    config_path.write_text(json.dumps(config))
    out: dict[str, Any] = {"workload": describe(Config.model_validate(config)) + ", 1 epoch", "runs": []}
    for nproc in plan.nprocs:
        threads = max(1, plan.threads // nproc)
        run_dir = folder / f"distributed-{nproc}"
        command = [sys.executable, "-m", "rnnclf", "train", "--config", str(config_path), "--run-dir", str(run_dir)]
        command += ["--nproc", str(nproc), "--set", f"train.num_threads={threads}"]
        log = folder / f"distributed-{nproc}.log"
        code, seconds, _ = run_child(command, log)
        if code != 0:
            raise RuntimeError(f"rnnclf train --nproc {nproc} failed ({code}):\n{tail(log)}")
        epoch = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        row = {
            "processes": nproc,
            "threads_each": threads,
            "tokens_per_s": epoch["tokens_per_s"],
            "epoch_seconds": epoch["epoch_seconds"],
            "optimizer_steps": epoch["step"],
            "process_seconds": seconds,
            "test_accuracy": (metrics["test"] or metrics["valid"])["accuracy"],
        }
        out["runs"].append(row)
        say(
            f"--nproc {nproc} ({threads} thread{'s' if threads > 1 else ''} each): {num(row['tokens_per_s'])} tokens/s, "
            f"epoch {row['epoch_seconds']:.1f}s in {row['optimizer_steps']} optimizer steps, test accuracy "
            f"{row['test_accuracy']:.4f}; {seconds:.1f}s with start-up"
        )
    first = out["runs"][0]
    for row in out["runs"][1:]:
        row["speedup"] = row["tokens_per_s"] / first["tokens_per_s"]
        say(
            f"{row['processes']} processes / {first['processes']}: {row['speedup']:.2f}x tokens/s "
            f"on {plan.threads} cores"
        )
    return out
