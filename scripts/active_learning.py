"""Labelling in rounds, simulated (issue 26): a built-in corpus's training split with its labels hidden is the pool;
start from a random 1% of it, then each round `rnnclf suggest` (a strategy) picks the next texts, their true labels
are "given", and `rnnclf train --init` updates the last round's model on every label so far; test accuracy after
every round, up to 30% of the labels. Every strategy of a seed starts from the same first 1% (one text of each
class, the rest at random; one run).

    python -m scripts.active_learning --corpus r8 --seeds 0,1,2 --strategies margin,entropy,diverse,random
    python -m scripts.active_learning --plot     # the figure and table of every corpus measured so far

The validation split is carved once (10% of the training split, stratified, seed 0) and is not counted in the
labels used; the pool is the rest. Rounds run in this process through the functions the commands call (train,
suggest); a finished round is kept, so the same command continues after a stop. Appends one JSON line per round
to results/active/<corpus>.jsonl; runs go to results/runs/active/<corpus>/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "active"
SCHEDULE = (1, 2, 3, 5, 7.5, 10, 15, 20, 30)  # % of the pool labelled after each round


def split_pool(corpus: str, folder: Path) -> dict[str, Path]:
    """valid.jsonl (10% carved, seed 0), pool.jsonl (the rest, texts only), pool_labels.json, test.jsonl."""
    from rnnclf.data.builtin import fetch
    from rnnclf.data.corpus import stratified_split
    from rnnclf.data.readers import read_split

    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.jsonl" for name in ("valid", "pool", "test")} | {
        "labels": folder / "pool_labels.json"
    }
    if all(path.exists() for path in paths.values()):
        return paths
    files = fetch(corpus)
    train = read_split(Path(files["train"]), "text", "label", "jsonl")
    pool, valid = stratified_split(train, 0.1, 0)
    write_rows(paths["valid"], list(valid.texts), valid.labels)
    write_rows(paths["pool"], list(pool.texts), None)
    paths["labels"].write_text(json.dumps(pool.labels))
    paths["test"].write_bytes(Path(files["test"]).read_bytes())
    return paths


def write_rows(path: Path, texts: list[str], labels: list[str] | None) -> None:
    rows = [{"text": text} | ({"label": labels[i]} if labels is not None else {}) for i, text in enumerate(texts)]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def train_round(
    config: Path, paths: dict, labelled: Path, run: Path, seed: int, init: Path | None, extra: list
) -> dict:
    """One run on the labels so far (from the last round's model when there is one); its metrics.json."""
    from rnnclf.config.loading import load_config
    from rnnclf.recipes.classify import train

    if not (run / "metrics.json").exists():
        if run.exists():
            import shutil

            shutil.rmtree(run)  # a round stopped half-way starts again
        overrides = [
            "data.dataset=null", f"data.train={labelled}", f"data.valid={paths['valid']}",
            f"data.test={paths['test']}", f"train.seed={seed}", f"output.run_dir={run}", *extra,
        ]  # fmt: skip
        overrides += [f"model.init={init}"] if init is not None else []
        train(load_config(config, overrides), log=lambda line: None)
    return json.loads((run / "metrics.json").read_text())


def suggest_round(run: Path, pool: Path, k: int, strategy: str, out: Path, seed: int) -> tuple[list[int], float]:
    """rnnclf suggest's work in this process: the pool lines (1-based) of the k texts chosen, and its seconds."""
    from tqdm import tqdm

    from rnnclf.active.pool import open_pool
    from rnnclf.active.suggest import Request, suggest
    from rnnclf.inference.predictor import Predictor
    from rnnclf.runs.directory import load_run

    started = time.perf_counter()
    if not out.exists():
        predictor = Predictor(load_run(run), "cpu", workers=1)
        request = Request(run, pool, k, strategy, out, seed)
        suggest(request, predictor, open_pool(pool, "text", "label"), lambda line: None, tqdm(disable=True))
    lines = [json.loads(line)["line"] for line in out.read_text().splitlines()]
    return lines, time.perf_counter() - started


def simulate(
    corpus: str, config: Path, seed: int, strategies: list[str], extra: list[str], schedule: tuple = SCHEDULE
) -> None:
    """Every round of every strategy for one seed; one JSON line per round (skipped when already there)."""
    work = ROOT / "results" / "runs" / "active" / corpus
    paths = split_pool(corpus, work)
    labels = json.loads(paths["labels"].read_text())
    texts = [json.loads(line)["text"] for line in paths["pool"].read_text(encoding="utf-8").splitlines()]
    counts = [max(round(share / 100 * len(texts)), 2) for share in schedule]
    first = first_labels(labels, counts[0], seed)
    done = read_results(corpus)
    for strategy in strategies:
        chosen, previous = list(first), None
        for number, count in enumerate(counts):
            folder = work / f"seed{seed}" / ("first" if number == 0 else strategy) / f"round{number}"
            folder.mkdir(parents=True, exist_ok=True)
            seconds = 0.0
            if number:
                k = count - len(chosen)
                lines, seconds = suggest_round(previous, paths["pool"], k, strategy, folder / "suggested.jsonl", seed)
                chosen += [line - 1 for line in lines]
            labelled = folder / "labelled.jsonl"
            write_rows(labelled, [texts[i] for i in chosen], [labels[i] for i in chosen])
            run = folder / "run"
            metrics = train_round(config, paths, labelled, run, seed, previous, extra)
            previous = run
            key = (seed, strategy, number)
            if key not in done:
                record = {
                    "corpus": corpus, "seed": seed, "strategy": strategy, "round": number, "labels": len(chosen),
                    "share": round(100 * len(chosen) / len(texts), 2), "test_accuracy": metrics["test"]["accuracy"],
                    "test_macro_f1": metrics["test"]["macro_f1"], "train_seconds": round(metrics["train_seconds"], 1),
                    "suggest_seconds": round(seconds, 1), "config": str(config.relative_to(ROOT)), "extra": extra,
                }  # fmt: skip
                with (RESULTS / f"{corpus}.jsonl").open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                done[key] = record
            print(f"{corpus} seed {seed} {strategy} round {number}: {len(chosen)} labels, test "
                  f"{metrics['test']['accuracy']:.4f}", flush=True)  # fmt: skip


def first_labels(labels: list[str], count: int, seed: int) -> list[int]:
    """The first labelled texts: one of each class (a user knows their labels), the rest drawn at random."""
    rng = random.Random(seed)
    first = {rng.choice([i for i, label in enumerate(labels) if label == name]) for name in sorted(set(labels))}
    rest = [i for i in range(len(labels)) if i not in first]
    return sorted(first | set(rng.sample(rest, max(count - len(first), 0))))


def read_results(corpus: str) -> dict:
    path = RESULTS / f"{corpus}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {(row["seed"], row["strategy"], row["round"]): row for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("r8", "20ng"))
    parser.add_argument("--config", type=Path, help="default: configs/<corpus>.yaml (the recipe)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategies", default="margin,entropy,diverse,random")
    parser.add_argument("--schedule", default=",".join(map(str, SCHEDULE)), help="% labelled after each round")
    parser.add_argument("--set", action="append", default=[], dest="extra", help="override a config key")
    parser.add_argument("--plot", action="store_true", help="write the figure and table of the results so far")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.plot:
        from scripts.active_report import report

        report()
        return
    config = (args.config or ROOT / "configs" / f"{args.corpus}.yaml").resolve()
    for seed in [int(s) for s in args.seeds.split(",")]:
        schedule = tuple(float(share) for share in args.schedule.split(","))
        simulate(args.corpus, config, seed, args.strategies.split(","), args.extra, schedule)


if __name__ == "__main__":
    main()
