"""Ensembles and distilled students (issue #24), measured: for each corpus, the best recipe (configs/<corpus>.yaml)
trained with seeds 0-4, their ensemble (`rnnclf ensemble`), and students of that recipe's size distilled from the
ensemble (`rnnclf train --set train.teacher=ENSEMBLE`, seeds 0-2); beside them the members trained alone with the
same seeds (and so the same splits), the linear anchor (scripts/linear_baseline.py, run by us on the same splits),
each model's size, and `rnnclf predict --input` over the test texts, whole process, for a member, a student and
the ensemble.

    .venv/bin/python scripts/distill_results.py --corpora r8 r52 20ng --student-set train.teacher_loss=mse \
        --student-set r8:train.teacher_augment=2 --student-set r52:train.teacher_augment=2
    .venv/bin/python scripts/distill_results.py --corpora reuters21578 --members 0 1 2 --students \
        --name distillation_reuters21578          # the ensemble alone

Runs are reused when finished (OUT/runs/<corpus>-seed<N> are also scripts/results.py's). The student's teacher
settings were chosen on validation (scripts/choose_variants.py, results/variants/<corpus>-distill.md); test is
read here once. Also measured: how much the members agree on test (the share of texts all of them get right,
all wrong, or split), which bounds what averaging them can gain. Writes OUT/distillation.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from results_runs import ROOT, recipes, run_command, run_rnnclf

from rnnclf.inference.ensemble import EnsemblePredictor
from rnnclf.inference.evaluate import encoded_split, labelled_split


def ensemble_of(corpus: str, seeds: list[int], out: Path) -> Path:
    folder = out / "runs" / f"{corpus}-ensemble"
    if not (folder / "ensemble.json").exists():
        members = [str(out / "runs" / f"{corpus}-seed{seed}") for seed in seeds]
        command = [sys.executable, "-m", "rnnclf", "ensemble", *members, "--out", str(folder), "--format", "json"]
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return folder


def corpus_settings(corpus: str, settings: list[str]) -> list[str]:
    """--student-set items for this corpus: KEY=VALUE for every corpus, CORPUS:KEY=VALUE for one."""
    chosen = []
    for item in settings:
        name, _, rest = item.partition(":") if ":" in item.split("=")[0] else ("", "", item)
        if name in ("", corpus):
            chosen.append(rest)
    return chosen


def student(corpus: str, seed: int, teacher: Path, settings: list[str], out: Path) -> dict:
    config = recipes(corpus)["scratch"]
    settings = corpus_settings(corpus, settings)
    command = ["train", "--config", str(config), "--set", f"train.seed={seed}", "--set", f"train.teacher={teacher}"]
    for item in settings:
        command += ["--set", item]
    return run_command(out / "runs" / f"{corpus}-student-seed{seed}", command)


def agreement(ensemble: Path) -> dict:
    """On test: the share of texts every member gets right, every member gets wrong, and split between them
    (multi-label: the whole set of labels right); only split texts can an average fix."""
    predictor = EnsemblePredictor.load(ensemble, "cpu")
    labelled, _ = labelled_split(predictor.run, None, "test")
    encoded, targets = encoded_split(predictor, labelled)
    right = []
    for member, logits in zip(predictor.members, predictor.member_logits(encoded), strict=True):
        if predictor.multi_label:
            decided = 1 / (1 + np.exp(-logits)) >= member.thresholds
            right.append((decided == targets.astype(bool)).all(axis=1))
        else:
            right.append(logits.argmax(axis=1) == targets)
    right = np.array(right)
    return {
        "texts": int(right.shape[1]),
        "all_right": float(right.all(axis=0).mean()),
        "all_wrong": float((~right).all(axis=0).mean()),
        "split": float((right.any(axis=0) & ~right.all(axis=0)).mean()),
        # a vote of the members is right on these; the best member alone on all_right + its own share of split
        "majority_right": float((right.mean(axis=0) > 0.5).mean()),
        "best_member_right": float(right.mean(axis=1).max()),
    }


def prediction_speed(run: Path, texts: list[str]) -> dict:
    """`rnnclf predict RUN --input FILE` over the texts, whole process: texts per second."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(" ".join(text.split()) for text in texts) + "\n")
    command = [sys.executable, "-m", "rnnclf", "predict", str(run), "--input", handle.name, "--format", "json"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    os.unlink(handle.name)
    return {"texts": len(texts), "seconds": round(seconds, 2), "texts_per_s": round(len(texts) / seconds, 1)}


def size_of(run: Path) -> dict:
    files = [run / "model.safetensors", run / "wide_features.safetensors"]
    summary = json.loads((run / "metrics.json").read_text())
    return {
        "parameters": (summary.get("parameters") or {}).get("total")
        or (summary.get("parameters") or {}).get("trainable"),
        "megabytes": round(sum(f.stat().st_size for f in files if f.exists()) / 1e6, 1),
    }


def figures(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)) * 100, "std": float(np.std(values)) * 100, "each": [v * 100 for v in values]}


def corpus_results(corpus: str, args: argparse.Namespace) -> dict:
    members = {seed: run_rnnclf(corpus, seed, args.out) for seed in args.members}
    ensemble = ensemble_of(corpus, args.members, args.out)
    summary = json.loads((ensemble / "metrics.json").read_text())
    students = {seed: student(corpus, seed, ensemble, args.student_set, args.out) for seed in args.students}
    key = "micro_f1" if summary.get("multi_label") else "accuracy"
    labelled, _ = labelled_split(EnsemblePredictor.load(ensemble, "cpu").run, None, "test")
    texts = list(labelled.texts)
    runs = args.out / "runs"
    seed = args.students[0] if args.students else args.members[0]
    row = {
        "corpus": corpus,
        "metric": key,
        "ensemble": summary["test"][key] * 100,
        "members": figures([members[s]["test"][key] for s in args.members]),
        "best_member": max(members[s]["test"][key] for s in args.members) * 100,
        "agreement": agreement(ensemble),
        "size": {"member": size_of(runs / f"{corpus}-seed{seed}")},
        "speed": {
            "member": prediction_speed(runs / f"{corpus}-seed{seed}", texts),
            "ensemble": prediction_speed(ensemble, texts),
        },
        "linear": linear_row(corpus, key),
    }
    if students:
        student_run = runs / f"{corpus}-student-seed{seed}"
        row |= {
            "members_as_students": figures([members[s]["test"][key] for s in args.students]),
            "students": figures([students[s]["test"][key] for s in args.students]),
            "student_settings": corpus_settings(corpus, args.student_set),
            "student_seconds": [students[s]["train_seconds"] for s in args.students],
            "member_seconds": [members[s]["train_seconds"] for s in args.students],
        }
        row["size"]["student"] = size_of(student_run)
        row["speed"]["student"] = prediction_speed(student_run, texts)
    return row


def linear_row(corpus: str, key: str) -> float | None:
    path = ROOT / "results" / "linear_baseline.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    row = next((r for r in rows if r["corpus"] == corpus), None)
    return None if row is None else row["test"][key] * 100


def table(rows: list[dict], args: argparse.Namespace) -> str:
    def cell(figures: dict | None) -> str:
        return "-" if figures is None else f"{figures['mean']:.2f} ± {figures['std']:.2f}"

    lines = [
        "# Ensembles and distilled students (test, %)",
        "",
        f"Members: configs/<corpus>.yaml, seeds {', '.join(map(str, args.members))}; ensemble: `rnnclf ensemble` of them;"
        " students: the same config with `train.teacher` = the ensemble (settings per corpus below),"
        f" seeds {', '.join(map(str, args.students)) or '-'}, beside the members of those seeds (same splits). Linear: "
        "TF-IDF 1-2-grams + LinearSVC (scripts/linear_baseline.py). Single-label: accuracy; multi-label: micro-F1. "
        "Vote: the share of test texts most members get right (multi-label: the whole set of labels).",
        "",
        "| corpus | linear | members | best member | members' vote | ensemble | members, student seeds | students |"
        " members: all right / all wrong / split |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        a = r["agreement"]
        lines.append(
            f"| {r['corpus']} | {r['linear']:.2f} | {cell(r['members'])} | {r['best_member']:.2f} | "
            f"{a['majority_right']:.2%} | **{r['ensemble']:.2f}** | {cell(r.get('members_as_students'))} | "
            f"**{cell(r.get('students'))}** | {a['all_right']:.1%} / {a['all_wrong']:.1%} / {a['split']:.1%} |"
        )
    lines += ["", "Size and `rnnclf predict --input` over the test texts (whole process, texts/s):", ""]
    lines += ["| corpus | member | student | ensemble | parameters (member / student) |", "|---|---:|---:|---:|---|"]
    for r in rows:
        s, z = r["speed"], r["size"]
        student = s.get("student")
        lines.append(
            f"| {r['corpus']} | {s['member']['texts_per_s']:,.0f} | "
            f"{'-' if student is None else format(student['texts_per_s'], ',.0f')} | {s['ensemble']['texts_per_s']:,.0f} | "
            f"{z['member']['parameters']:,} / {format(z['student']['parameters'], ',') if 'student' in z else '-'} |"
        )
    lines += ["", "Students' settings beside train.teacher:", ""]
    lines += [f"- {r['corpus']}: {' '.join(r['student_settings']) or 'the defaults'}" for r in rows if "students" in r]
    lines += ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["r8", "r52", "20ng"])
    parser.add_argument("--members", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--students", nargs="*", type=int, default=[0, 1, 2], help="none: the ensemble only")
    parser.add_argument(
        "--student-set",
        action="append",
        default=[],
        help="KEY=VALUE for every corpus's students, CORPUS:KEY=VALUE for one (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--name", default="distillation", help="OUT/NAME.md and .json")
    args = parser.parse_args()
    rows = [corpus_results(corpus, args) for corpus in args.corpora]
    (args.out / f"{args.name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(table(rows, args))
    print(table(rows, args))


if __name__ == "__main__":
    main()
