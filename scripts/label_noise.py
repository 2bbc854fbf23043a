"""Planted label errors found by cross-validation (issue 25): flip the labels of a share of a built-in corpus's
training rows (rows and new labels chosen at random, seeded), cross-validate its config on the noisy split with
`rnnclf cv` (the command users run), then score the label errors it finds against the flips, beside cleanlab's
find_label_issues on the same out-of-fold probabilities.

    python -m scripts.label_noise --corpus r8 --folds 5             # cv, then the scores
    python -m scripts.label_noise --corpus r8 --folds 5 --score-only # the scores of a finished cv

Writes results/label_errors_<corpus>.json and .md. Needs the dev extra (cleanlab).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def plant(corpus: str, share: float, seed: int, folder: Path) -> tuple[Path, set[int]]:
    """The corpus's training file with `share` of its labels flipped to another class; the flipped lines."""
    from rnnclf.data.builtin import fetch

    lines = Path(fetch(corpus)["train"]).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    classes = sorted({row["label"] for row in rows})
    rng = random.Random(seed)
    flipped = set(rng.sample(range(len(rows)), round(share * len(rows))))
    for index in flipped:
        rows[index]["label"] = rng.choice([label for label in classes if label != rows[index]["label"]])
    path = folder / f"{corpus}-noisy-train.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path, {index + 1 for index in flipped}  # file lines are 1-based


def noisy_config(corpus: str, train: Path, folder: Path) -> Path:
    """configs/<corpus>.yaml reading the noisy training file (the built-in test file stays; cv does not read it)."""
    import yaml

    from rnnclf.data.builtin import fetch

    config = yaml.safe_load((ROOT / "configs" / f"{corpus}.yaml").read_text())
    config["data"] = {key: value for key, value in config["data"].items() if key != "dataset"}
    config["data"] |= {"train": str(train), "test": str(fetch(corpus)["test"])}
    path = folder / f"{corpus}-noisy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def precision_recall(found: list[int], planted: set[int]) -> dict[str, float]:
    hits = len(set(found) & planted)
    return {
        "flagged": len(found),
        "precision": hits / max(len(found), 1),
        "recall": hits / len(planted),
    }


def at_recall(ranked: list[int], planted: set[int], recall: float) -> dict[str, float]:
    """Precision of the shortest prefix of a ranking (most suspect first) that reaches `recall` of the flips."""
    hits = 0
    for count, line in enumerate(ranked, start=1):
        hits += line in planted
        if hits >= recall * len(planted):
            return {"recall": hits / len(planted), "precision": hits / count, "rows": count}
    return {"recall": hits / len(planted), "precision": hits / max(len(ranked), 1), "rows": len(ranked)}


def score(out: Path, planted: set[int]) -> dict[str, dict]:
    """Ours (label_errors.json) and cleanlab's on oof.jsonl's probabilities, against the planted flips."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from rnnclf.check.label_errors import label_quality

    lines = (out / "oof.jsonl").read_text(encoding="utf-8").splitlines()
    header, records = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    index = {label: i for i, label in enumerate(header["labels"])}
    labels = np.array([index[record["label"]] for record in records])
    probs = np.array([record["probs"] for record in records])
    probs /= probs.sum(axis=1, keepdims=True)  # rounded to 6 digits in the file
    file_lines = [record["line"] for record in records]
    ours = [row["line"] for row in json.loads((out / "label_errors.json").read_text())["errors"]]
    theirs = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    ours_all = np.argsort(label_quality(labels, probs), kind="stable")
    theirs_all = np.argsort(get_label_quality_scores(labels, probs, method="self_confidence"), kind="stable")
    accuracy = float(np.mean(probs.argmax(axis=1) == labels))
    return {
        # the flagged rows, the flagged list's shortest head that finds 70% of the flips, and the same of the ranking
        # of every row by label quality
        "rnnclf": precision_recall(ours, planted)
        | {"list_at_recall_0.7": at_recall(ours, planted, 0.7)}
        | {"at_recall_0.7": at_recall([file_lines[i] for i in ours_all], planted, 0.7)},
        "cleanlab": precision_recall([file_lines[i] for i in theirs], planted)
        | {"list_at_recall_0.7": at_recall([file_lines[i] for i in theirs], planted, 0.7)}
        | {"at_recall_0.7": at_recall([file_lines[i] for i in theirs_all], planted, 0.7)},
        "oof_accuracy_on_given_labels": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--share", type=float, default=0.03)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="cv folder (default results/runs/<corpus>-noisy-cv)")
    parser.add_argument("--score-only", action="store_true")
    args = parser.parse_args()
    folder = ROOT / "results" / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    out = args.out or folder / f"{args.corpus}-noisy-cv"
    train, planted = plant(args.corpus, args.share, args.seed, folder)
    config = noisy_config(args.corpus, train, folder)
    seconds = None
    if not args.score_only:
        started = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "rnnclf",
            "cv",
            "--config",
            str(config),
            "--folds",
            str(args.folds),
            "--out",
            str(out),
        ]
        subprocess.run([*command, "--format", "json"], check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
    target = ROOT / "results" / f"label_errors_{args.corpus}.json"
    if seconds is None and target.exists():  # --score-only: the cv's time as measured when it ran
        seconds = json.loads(target.read_text()).get("cv_seconds")
    result = {"corpus": args.corpus, "share": args.share, "planted": len(planted), "folds": args.folds}
    result |= {"seed": args.seed, "cv_seconds": seconds, "cv": str(out.relative_to(ROOT)), **score(out, planted)}
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2), file=sys.stdout)


if __name__ == "__main__":
    main()
