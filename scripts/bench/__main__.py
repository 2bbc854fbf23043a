"""`python -m scripts.bench`: parse the options, run the chosen sections (the JSON written after each one), print
the summary. See the package's docstring (scripts/bench/__init__.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from rnnclf.device.cores import available_cores
from rnnclf.device.threads import use_cpu_threads

from . import __doc__ as overview
from .common import ROOT, SECTIONS, Plan, machine_info, make_plan, quickstart_config, say
from .distributed import bench_distributed
from .flops import bench_flops
from .predict import bench_predict
from .scale import bench_memory, bench_scale, scale_child
from .states import bench_busy, bench_int8, bench_matrix, lesson_child_main
from .summary import print_summary, states_summary_rows, summary_rows
from .tokens import bench_prepare, bench_tokenize
from .training import bench_training
from .wide import bench_linear, bench_wide


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description=overview.split("\n\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes everywhere: a smoke test in well under a minute"
    )
    parser.add_argument(
        "--threads", type=int, default=available_cores(), help="torch CPU threads (default: cores available)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="where to train and predict")
    parser.add_argument("--steps", type=int, help="timed training steps per pipeline (default 60; quick 4)")
    parser.add_argument("--latency-calls", type=int, help="predict([text]) calls (default 200; quick 10)")
    parser.add_argument("--docs", type=int, help="short documents to tokenize (default 100,000; quick 2,000)")
    parser.add_argument("--scale-sizes", type=int, nargs="+", help="corpus sizes (default 100000 300000 1000000)")
    parser.add_argument("--scale-steps", type=int, help="training steps per scale size (default 200; quick 10)")
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2], help="process counts (default 1 2)")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "quickstart", help="run directory to predict with")
    parser.add_argument("--skip", nargs="+", default=[], choices=SECTIONS, metavar="SECTION", help=", ".join(SECTIONS))
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON results (default bench.json)")
    parser.add_argument("--scale-child", type=Path, help=argparse.SUPPRESS)
    # a lesson config's tokens/s over --steps steps in this fresh process (states.lesson_child starts it)
    parser.add_argument("--lesson-child", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--notebook", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.run = args.run.resolve()  # sections run rnnclf in their own folder: a relative path would be lost
    return args


def run_section(
    results: dict[str, Any], failed: list[str], out: Path, name: str, function: Any, *arguments: Any
) -> None:
    """Run one section into results[name] (its traceback there if it fails), then write all results so far."""
    say(f"\n== {name}")
    start = time.perf_counter()
    try:
        results[name] = function(*arguments)
    except Exception:
        failed.append(name)
        results[name] = {"error": traceback.format_exc()}
        say(traceback.format_exc().rstrip())
    say(f"({name}: {time.perf_counter() - start:.1f}s)")
    out.write_text(json.dumps(results, indent=2) + "\n")


def run_sections(args: argparse.Namespace, plan: Plan, results: dict[str, Any]) -> list[str]:
    """Every section not skipped, in order, into `results`; the names of those that failed."""
    failed: list[str] = []

    def section(name: str, function: Any, *arguments: Any) -> None:
        run_section(results, failed, args.out, name, function, *arguments)

    skip = set(args.skip)
    with tempfile.TemporaryDirectory(prefix="rnnclf-bench-") as temp:
        folder = Path(temp)
        if not {"reference", "naive"} <= skip:
            section("training", bench_training, plan, "reference" not in skip, "naive" not in skip)
            section(
                "training_quickstart",
                bench_training,
                plan,
                "reference" not in skip,
                "naive" not in skip,
                quickstart_config(plan),
            )
        if "flops" not in skip:
            workloads = {"reference": results.get("training"), "quickstart": results.get("training_quickstart")}
            section("flops", bench_flops, plan, workloads)
        for name, function, extra in [
            ("predict", bench_predict, (args.run, folder)),
            ("tokenize", bench_tokenize, ()),
            ("prepare", bench_prepare, (folder,)),
            ("memory", bench_memory, (folder,)),
            ("scale", bench_scale, (folder,)),
            ("distributed", bench_distributed, (folder,)),
            # the states users are in: every model, a busy machine, int8 (issue 12)
            ("matrix", bench_matrix, ()),
            ("busy", bench_busy, (folder,)),
            ("int8", bench_int8, (args.run, folder)),
            ("wide", bench_wide, (folder,)),  # issue 23: the wide head, and the linear model alone
            ("linear", bench_linear, (args.run, folder)),
        ]:
            if name not in skip:
                section(name, function, plan, *extra)
    return failed


def finish(results: dict[str, Any], plan: Plan, out: Path, started: float) -> None:
    """The end of the run: its load average and time, the summary rows, all in the JSON; the summary printed."""
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["machine"]["total_seconds"] = time.perf_counter() - started
    rows = summary_rows(results) + states_summary_rows(results)
    results["summary"] = [dict(zip(("figure", "value", "target", "value_vs_target"), row, strict=True)) for row in rows]
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(rows)
    load = ", ".join(f"{x:.2f}" for x in results["machine"]["load_average_end"])
    say(
        f"\n{plan.threads} torch threads; load average at the end: {load}; total {results['machine']['total_seconds']:.0f}s"
    )
    say(f"results written to {out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_cpu_threads(args.threads)
    plan = make_plan(args)
    if args.scale_child is not None:
        scale_child(args.scale_child, plan.scale_steps, plan.threads)
        return 0
    if args.lesson_child is not None:
        lesson_child_main(args.lesson_child, plan, args.notebook)
        return 0

    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine_info(plan)}
    failed = run_sections(args, plan, results)
    finish(results, plan, args.out, started)
    if failed:
        say(f"failed sections: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
