"""Adding a label by an update against a full retrain (issue 26): a corpus's training split without one label trains
the "old" model (the recipe, configs/<corpus>.yaml); then the texts of that label arrive. Either

    update:  rnnclf train --init OLD on the new label's texts alone, with data.rehearsal old texts per epoch
    retrain: the recipe on the whole training split, from scratch

and both are tested on the whole test split: accuracy on the old labels' texts and on the new label's, and the wall
time of the training call (what a user waits: data, fit, calibration, test, linear baseline). Update and retrain of
each seed run one after the other on the same machine, in this process, through the function `rnnclf train` calls.

    python -m scripts.update_experiment --corpus r8 --label ship --seeds 0,1,2 --rehearsal 1000 --epochs 5

Appends to results/active/update_<corpus>.jsonl; runs go to results/runs/active/update-<corpus>/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "active"


def split_files(corpus: str, label: str, folder: Path) -> dict[str, Path]:
    """old_train / new_train (the label's texts) / all_train, old_test (without the label) and test."""
    from rnnclf.data.builtin import fetch

    folder.mkdir(parents=True, exist_ok=True)
    files = fetch(corpus)
    train = Path(files["train"]).read_text(encoding="utf-8").splitlines()
    test = Path(files["test"]).read_text(encoding="utf-8").splitlines()
    parts = {
        "old_train": [line for line in train if json.loads(line)["label"] != label],
        "new_train": [line for line in train if json.loads(line)["label"] == label],
        "all_train": train,
        "old_test": [line for line in test if json.loads(line)["label"] != label],
        "test": test,
    }
    paths = {}
    for name, lines in parts.items():
        paths[name] = folder / f"{name}.jsonl"
        paths[name].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return paths


def timed_train(config: Path, overrides: list[str], run: Path) -> float:
    """rnnclf train's work on a config, in this process; its wall seconds (a finished run is kept: 0 then)."""
    from rnnclf.config.loading import load_config
    from rnnclf.recipes.classify import train

    if (run / "metrics.json").exists():
        return json.loads((run / "wall.json").read_text())["seconds"]
    started = time.perf_counter()
    train(load_config(config, [*overrides, "data.dataset=null", f"output.run_dir={run}"]), log=lambda line: None)
    seconds = time.perf_counter() - started
    (run / "wall.json").write_text(json.dumps({"seconds": seconds}))
    return seconds


def accuracies(run: Path, test: Path, label: str) -> dict[str, float]:
    """Accuracy on the test texts of the old labels, of the new one, and on all."""
    from rnnclf.inference.predictor import Predictor

    rows = [json.loads(line) for line in test.read_text(encoding="utf-8").splitlines()]
    predictor = Predictor.load(run)
    guess = np.array(predictor.labels)[predictor.predict_proba([row["text"] for row in rows]).argmax(axis=1)]
    truth = np.array([row["label"] for row in rows])
    new = truth == label
    right = guess == truth
    return {"old": float(right[~new].mean()), "new": float(right[new].mean()), "all": float(right.mean())}


def one_seed(args: argparse.Namespace, paths: dict[str, Path], seed: int, work: Path) -> dict:
    config = ROOT / "configs" / f"{args.corpus}.yaml"
    common = [f"train.seed={seed}", f"train.num_threads={args.threads}"]
    old, update, full = (work / f"{name}-seed{seed}" for name in ("old", "update", "retrain"))
    timed_train(config, [*common, f"data.train={paths['old_train']}", f"data.test={paths['old_test']}"], old)
    update_args = [
        *common, f"data.train={paths['new_train']}", f"data.test={paths['test']}", f"model.init={old}",
        f"data.rehearsal={args.rehearsal}", f"train.epochs={args.epochs}",
    ]  # fmt: skip
    retrain_args = [*common, f"data.train={paths['all_train']}", f"data.test={paths['test']}"]
    order = [(update, update_args), (full, retrain_args)]
    seconds = {
        run.name: timed_train(config, overrides, run) for run, overrides in (order if seed % 2 == 0 else order[::-1])
    }
    return {
        "corpus": args.corpus, "label": args.label, "seed": seed, "rehearsal": args.rehearsal, "epochs": args.epochs,
        "update": accuracies(update, paths["test"], args.label) | {"seconds": round(seconds[update.name], 1)},
        "retrain": accuracies(full, paths["test"], args.label) | {"seconds": round(seconds[full.name], 1)},
        "old_model": accuracies_old(old, paths["old_test"]),
    }  # fmt: skip


def accuracies_old(run: Path, test: Path) -> float:
    return json.loads((run / "metrics.json").read_text())["test"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("r8", "20ng"), required=True)
    parser.add_argument("--label", required=True, help="the label that arrives later")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rehearsal", type=float, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="train.num_threads")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = ROOT / "results" / "runs" / "active" / f"update-{args.corpus}"
    paths = split_files(args.corpus, args.label, work)
    for seed in [int(s) for s in args.seeds.split(",")]:
        record = one_seed(args, paths, seed, work)
        with (RESULTS / f"update_{args.corpus}.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
