"""Reproduce the README's results table: rnnclf on R8, R52 and 20NG over several seeds, next to
fastText trained on the same splits in the same run and the published figures.

    .venv/bin/pip install fasttext-numpy2==0.10.4     # script-only dependency, not one of rnnclf's
    .venv/bin/python scripts/results.py [--corpora r8 r52 20ng] [--seeds 0 1 2] [--out results]
                                        [--recipes scratch pretrained] [--no-fasttext]
    .venv/bin/python scripts/results.py --corpora reuters21578    # multi-label: its own table

Each corpus trains with configs/<corpus>.yaml (chosen on the validation split; the test split is
only read for the final figures). Runs go to <out>/runs/, the single-label table to <out>/results.md
and each multi-label corpus's table to <out>/results_<corpus>.md (with .json beside each).

Where a language model exists (configs/<corpus>-lm.yaml) a single-label corpus has a second recipe,
pretrained: configs/<corpus>-pretrained.yaml, fine-tuned from the language model. (Should the
pretrained recipe become the best, configs/<corpus>.yaml names model.init and the from-scratch one
moves to configs/<corpus>-scratch.yaml; `recipes()` reads either layout.) The language model is
pretrained once, into <out>/runs/<corpus>-lm (reused when finished), and each seed fine-tunes from it;
its time is reported beside the fine-tuning time. `--recipes pretrained` runs only those and keeps the
from-scratch figures already in <out>/results.json; fastText reruns unless --no-fasttext (then its
figures are kept too).

The multi-label fastText baseline (`-loss ova`) trains on a seeded random 90% of the training split,
takes the one global threshold with the best micro-F1 on the other 10%, and is scored on test by that
same 90% model (the 10% tune the threshold only: a model retrained on all of train would score
differently from the one the threshold was tuned for). It runs once per seed, the seed choosing the 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rnnclf.data.builtin import CORPORA, fetch
from rnnclf.evaluation.multilabel import multilabel_report
from rnnclf.evaluation.thresholds import tune_thresholds

ROOT = Path(__file__).resolve().parent.parent

# test accuracy (%) as published; see ../shared/corpora.md for sources
PUBLISHED = {
    "fastText (TextGCN paper)": {"r8": 96.1, "r52": 92.8, "20ng": 79.4},
    "Bi-LSTM (TextGCN paper)": {"r8": 96.3, "r52": 90.5, "20ng": 73.2},
    "TextGCN": {"r8": 97.1, "r52": 93.6, "20ng": 86.3},
    "WideMLP": {"r8": 97.3, "r52": 94.0, "20ng": 84.2},
    "BERT (BertGCN paper)": {"r8": 97.8, "r52": 96.4, "20ng": 85.3},
}
TARGETS = {"r8": 98.0, "r52": 95.0, "20ng": 86.0}  # issue 15 (issue 3 asked 97.5 / 94.0 / 84.0)

# multi-label: published test F1 (%), and the target test micro-F1 (%); see ../shared/corpora.md
PUBLISHED_MULTI_LABEL = {
    "reuters21578": {
        "regularised BiLSTM (Adhikari et al., NAACL 2019), on 90 labels, ours has 95: compare with care": 87.0
    },
}
TARGETS_MULTI_LABEL = {"reuters21578": 89.0}
RULES = {"fixed": "0.5", "global": "one threshold, best valid micro-F1", "per_label": "each label's best valid F1"}


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


def fasttext_line(text: str, labels: list[str]) -> str:
    """One fastText line: its labels (spaces turned into _) and then the text on one line."""
    prefixes = " ".join("__label__" + "_".join(label.split()) for label in labels)
    return f"{prefixes} {' '.join(text.split())}\n"


def run_fasttext(corpus: str) -> tuple[float, float]:
    """fastText with dim 100, word bigrams, 25 epochs, lr 1.0 (its tutorial's setting for these options),
    2 threads, on the official train split; (accuracy, seconds)."""
    import fasttext

    files = fetch(corpus)

    def write(split: str, handle) -> list[str]:
        labels = []
        lines = files[split].read_text(encoding="utf-8").splitlines()
        # the corpora are sorted by class, and fastText does not shuffle its input: shuffle it here
        random.Random(0).shuffle(lines)
        for line in lines:
            row = json.loads(line)
            label = "_".join(row["label"].split())
            labels.append(label)
            handle.write(fasttext_line(row["text"], [label]))
        handle.flush()
        return labels

    with (
        tempfile.NamedTemporaryFile("w", suffix=".txt") as train,
        tempfile.NamedTemporaryFile("w", suffix=".txt") as test,
    ):
        write("train", train)
        truth = write("test", test)
        start = time.perf_counter()
        model = fasttext.train_supervised(train.name, dim=100, wordNgrams=2, epoch=25, lr=1.0, thread=2, verbose=0)
        seconds = time.perf_counter() - start
        texts = [line.split(" ", 1)[1].rstrip("\n") for line in Path(test.name).read_text().splitlines()]
        predicted = [labels[0].removeprefix("__label__") for labels in model.predict(texts)[0]]
    return 100 * sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth), seconds


def read_multi_label(path: Path) -> list[tuple[str, list[str]]]:
    """(text, labels) rows of a multi-label JSONL split."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["text"], row["labels"]) for row in rows]


def indicator_matrix(label_lists: list[list[str]], labels: list[str]) -> np.ndarray:
    """(texts, labels) 0/1 targets."""
    column = {label: i for i, label in enumerate(labels)}
    targets = np.zeros((len(label_lists), len(labels)), dtype=np.int8)
    for row, row_labels in enumerate(label_lists):
        targets[row, [column[label] for label in row_labels]] = 1
    return targets


def train_fasttext_ova(rows: list[tuple[str, list[str]]]):
    """fastText -loss ova, dim 100, word bigrams, 25 epochs, lr 0.5, 2 threads, on the rows in their order;
    (model, seconds, texts skipped for having no label: fastText cannot train on those)."""
    import fasttext

    labelled = [(text, labels) for text, labels in rows if labels]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as train:
        train.writelines(fasttext_line(text, labels) for text, labels in labelled)
        train.flush()
        start = time.perf_counter()
        model = fasttext.train_supervised(
            train.name, loss="ova", dim=100, wordNgrams=2, epoch=25, lr=0.5, thread=2, verbose=0
        )
        seconds = time.perf_counter() - start
    return model, seconds, len(rows) - len(labelled)


def fasttext_probabilities(model, texts: list[str], labels: list[str]) -> np.ndarray:
    """(texts, labels) probabilities of every label; 0 for a label the model never saw in training."""
    column = {"__label__" + "_".join(label.split()): i for i, label in enumerate(labels)}
    names, values = model.predict([" ".join(text.split()) for text in texts], k=-1, threshold=0.0)
    probabilities = np.zeros((len(texts), len(labels)))
    for row, (row_names, row_values) in enumerate(zip(names, values, strict=True)):
        probabilities[row, [column[name] for name in row_names]] = row_values
    return probabilities


def run_fasttext_ova(corpus: str, seed: int, lowercase: bool = False) -> dict:
    """fastText ova trained on a random 90% of train (chosen by `seed`), its one global threshold tuned for
    micro-F1 on the other 10%, scored on test by the same code as rnnclf's runs (multilabel_report). With
    `lowercase`, the texts are lowercased first, as rnnclf's word tokenizer does."""
    files = fetch(corpus)
    train, test = read_multi_label(files["train"]), read_multi_label(files["test"])
    if lowercase:
        train, test = ([(text.lower(), labels) for text, labels in rows] for rows in (train, test))
    labels = sorted({label for _, row_labels in train + test for label in row_labels})
    random.Random(seed).shuffle(train)  # also fastText's input order: it does not shuffle, and train is by date
    held_out, fit = train[: len(train) // 10], train[len(train) // 10 :]
    model, seconds, skipped = train_fasttext_ova(fit)

    def scores(rows: list[tuple[str, list[str]]]) -> tuple[np.ndarray, np.ndarray]:
        texts, label_lists = zip(*rows, strict=True)
        return fasttext_probabilities(model, list(texts), labels), indicator_matrix(list(label_lists), labels)

    # floor 0: an exact search over every threshold, not only rnnclf's >= 0.05
    threshold = tune_thresholds(*scores(held_out), labels, floor=0.0)[1]["global"]
    report = multilabel_report(*scores(test), labels, np.full(len(labels), threshold))
    return {
        "micro_f1": 100 * report["micro_f1"],
        "macro_f1": 100 * report["macro_f1"],
        "threshold": threshold,
        "seconds": seconds,
        "train_texts": len(fit) - skipped,
        "held_out_texts": len(held_out),
        "skipped_unlabelled": skipped,
        "labels_unseen_in_training": len(set(labels) - {label for _, row_labels in fit for label in row_labels}),
    }


def spread(values: list[float]) -> dict:
    """The values with their mean and sample standard deviation (0 for one value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"each": values, "mean": statistics.mean(values), "std": std}


def multi_label_row(runs: list[dict], fasttext_runs: dict[str, list[dict]]) -> dict:
    """F1 figures (%) of rnnclf's runs at the thresholds they chose and under each threshold rule (by_rule), on
    test and valid, and fastText's."""

    def f1(split: str, key: str, rule: str | None = None) -> dict:
        return spread([100 * (run[split]["by_rule"][rule] if rule else run[split])[key] for run in runs])

    row = {
        "thresholds": sorted({run["thresholds"]["method"] for run in runs}),
        "test_micro_f1": f1("test", "micro_f1"),
        "test_macro_f1": f1("test", "macro_f1"),
        "valid_micro_f1": f1("valid", "micro_f1"),
        "valid_macro_f1": f1("valid", "macro_f1"),
        "by_rule": {
            rule: {
                f"{split}_{key}": f1(split, key, rule)
                for split in ("test", "valid")
                for key in ("micro_f1", "macro_f1")
            }
            for rule in RULES
        },
        "seconds": statistics.mean(run["train_seconds"] for run in runs),
        "tokens_per_s": statistics.mean(run["tokens_per_s"] for run in runs),
    }
    for name, baseline in fasttext_runs.items():  # "fasttext" (texts as they are), "fasttext_lowercase"
        row[name] = {
            "micro_f1": spread([run["micro_f1"] for run in baseline]),
            "macro_f1": spread([run["macro_f1"] for run in baseline]),
            "seconds": statistics.mean(run["seconds"] for run in baseline),
            "runs": baseline,
        }
    return row


def machine_line(out: Path, corpus: str, seed: int) -> str:
    runs = [out / "runs" / f"{corpus}-{kind}seed{seed}" for kind in ("", "pretrained-")]
    env = json.loads(next(run for run in runs if run.exists()).joinpath("env.json").read_text())
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {env['threads']} torch threads, torch {env['torch']}"
    )


def multi_label_table(corpus: str, row: dict, seeds: list[int], machine: str) -> str:
    """The Markdown table of one multi-label corpus: test micro-F1 and macro-F1 (%)."""

    def cell(figures: dict) -> str:
        return f"{figures['mean']:.2f} ± {figures['std']:.2f}"

    def each(figures: dict) -> str:
        return " / ".join(f"{value:.2f}" for value in figures["each"])

    lines = [
        f"{corpus} (multi-label): test F1 (%), mean ± std over seeds {', '.join(map(str, seeds))}; {machine}.",
        "",
        "| model | test micro-F1 | test macro-F1 |",
        "|---|---|---|",
        f"| **rnnclf** (configs/{corpus}.yaml), thresholds chosen on valid ({', '.join(row['thresholds'])}) | "
        f"**{cell(row['test_micro_f1'])}** | **{cell(row['test_macro_f1'])}** |",
        f"| rnnclf, each seed | {each(row['test_micro_f1'])} | {each(row['test_macro_f1'])} |",
        *(
            f"| rnnclf, same models, thresholds: {rule} ({about}) | {cell(figures['test_micro_f1'])} | "
            f"{cell(figures['test_macro_f1'])} |"
            for rule, about in RULES.items()
            for figures in [row["by_rule"][rule]]
        ),
        *(
            f"| rnnclf on **valid**, thresholds: {rule} (fitted on valid itself) | {cell(figures['valid_micro_f1'])} | "
            f"{cell(figures['valid_macro_f1'])} |"
            for rule in RULES
            for figures in [row["by_rule"][rule]]
        ),
        f"| rnnclf training time per run (2 CPU cores) | {row['seconds'] / 60:.1f} min "
        f"({row['tokens_per_s'] / 1000:.0f}k tok/s) | |",
    ]
    for name, texts in (("fasttext", "texts as they are"), ("fasttext_lowercase", "texts lowercased as rnnclf's")):
        if name not in row:
            continue
        fasttext = row[name]
        thresholds = " / ".join(f"{run['threshold']:.3f}" for run in fasttext["runs"])
        skipped = fasttext["runs"][0]["skipped_unlabelled"]
        note = f", {skipped} training texts without a label skipped" if skipped else ""
        lines += [
            f"| fastText -loss ova here, {texts} (dim 100, bigrams, 25 epochs, lr 0.5, 2 threads), trained on 90% "
            f"of train, one global threshold tuned on the other 10% ({thresholds}), "
            f"training {fasttext['seconds']:.0f}s per run{note} "
            f"| {cell(fasttext['micro_f1'])} | {cell(fasttext['macro_f1'])} |",
            f"| fastText, {texts}, each seed | {each(fasttext['micro_f1'])} | {each(fasttext['macro_f1'])} |",
        ]
    for name, figure in PUBLISHED_MULTI_LABEL.get(corpus, {}).items():
        lines.append(f"| {name}, published | {figure:.1f} | |")
    if corpus in TARGETS_MULTI_LABEL:
        lines.append(f"| target of the multi-label issue | {TARGETS_MULTI_LABEL[corpus]:.1f} | |")
    return "\n".join(lines) + "\n"


def multi_label_results(corpus: str, seeds: list[int], out: Path, fasttext: bool) -> None:
    """Train (or reuse) rnnclf's runs and fastText on one multi-label corpus; write results_<corpus>.md/.json."""
    runs = [run_rnnclf(corpus, seed, out) for seed in seeds]
    fasttext_runs = {}
    if fasttext:
        fasttext_runs["fasttext"] = [run_fasttext_ova(corpus, seed) for seed in seeds]
        fasttext_runs["fasttext_lowercase"] = [run_fasttext_ova(corpus, seed, lowercase=True) for seed in seeds]
    row = multi_label_row(runs, fasttext_runs)
    print(corpus, json.dumps(row), flush=True)
    table = multi_label_table(corpus, row, seeds, machine_line(out, corpus, seeds[0]))
    (out / f"results_{corpus}.md").write_text(table, encoding="utf-8")
    (out / f"results_{corpus}.json").write_text(json.dumps(row, indent=2), encoding="utf-8")
    print(table)


def figures(runs: list[dict]) -> dict:
    """Test accuracy per seed, its mean and spread, validation accuracy, time and speed of a recipe's runs."""
    accuracies = [100 * run["test"]["accuracy"] for run in runs]
    row = {
        "accuracies": accuracies,
        "mean": statistics.mean(accuracies),
        "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "valid": statistics.mean(100 * run["valid"]["accuracy"] for run in runs),
        "seconds": statistics.mean(run["train_seconds"] for run in runs),
        "tokens_per_s": statistics.mean(run["tokens_per_s"] for run in runs),
    }
    language_model = runs[0].get("language_model")
    if language_model:  # pretrained once, shared by every seed's fine-tuning
        row["language_model"] = {key: language_model[key] for key in ("train_seconds", "valid_perplexity", "texts")}
    return row


def single_label_results(corpora: list[str], seeds: list[int], out: Path, fasttext: bool, chosen: list[str]) -> None:
    """Train (or reuse) rnnclf's runs and fastText on the single-label corpora; write results.md/.json."""
    known = out / "results.json"
    rows = json.loads(known.read_text()) if known.exists() else {}
    for corpus in corpora:
        row = rows.get(corpus, {})  # the recipes not chosen keep their figures
        if "scratch" in chosen:
            row.update(figures([run_rnnclf(corpus, seed, out) for seed in seeds]))
        if "pretrained" in chosen and "pretrained" in recipes(corpus):
            row["pretrained"] = figures([run_rnnclf(corpus, seed, out, "pretrained") for seed in seeds])
        if fasttext:
            row["fasttext"], row["fasttext_seconds"] = run_fasttext(corpus)
        rows[corpus] = row
        print(corpus, json.dumps(row), flush=True)
    table = single_label_table(rows, corpora, seeds, out)
    (out / "results.md").write_text(table, encoding="utf-8")
    known.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(table)


def recipe_name(recipe: str, corpora: list[str]) -> str:
    """The recipe's config as the table names it: configs/<corpus>....yaml when all corpora agree."""
    names = {recipes(c).get(recipe, Path("-")).name.replace(c, "&lt;corpus&gt;", 1) for c in corpora}
    return f"configs/{names.pop()}" if len(names) == 1 else "configs/: see each corpus"


def single_label_table(rows: dict, corpora: list[str], seeds: list[int], out: Path) -> str:
    def line(name: str, cell) -> str:
        return f"| {name} | " + " | ".join(cell(rows[c]) for c in corpora) + " |"

    def pretrained(cell):
        return lambda row: cell(row["pretrained"]) if "pretrained" in row else "-"

    def scratch(cell):  # absent when only the pretrained recipe has run into a new --out
        return lambda row: cell(row) if "mean" in row else "-"

    def time_cell(row: dict) -> str:
        return f"{row['seconds'] / 60:.1f} min ({row['tokens_per_s'] / 1000:.0f}k tok/s)"

    lines = [
        f"Test accuracy (%), mean ± std over seeds {', '.join(map(str, seeds))}; {machine_line(out, corpora[0], seeds[0])}.",
        "",
        "| model | " + " | ".join(c.upper() for c in corpora) + " |",
        "|---|" + "---|" * len(corpora),
        line(
            f"**rnnclf, pretrained** (configs/&lt;corpus&gt;-lm.yaml, then {recipe_name('pretrained', corpora)})",
            pretrained(lambda r: f"**{r['mean']:.2f} ± {r['std']:.2f}**"),
        ),
        line("rnnclf pretrained, each seed", pretrained(lambda r: " / ".join(f"{a:.2f}" for a in r["accuracies"]))),
        line(
            "rnnclf pretrained: language model once + fine-tuning per run (2 CPU cores)",
            pretrained(lambda r: f"{r['language_model']['train_seconds'] / 60:.1f} min + {time_cell(r)}"),
        ),
        line("rnnclf pretrained: validation accuracy", pretrained(lambda r: f"{r['valid']:.2f}")),
        line(
            f"**rnnclf, from scratch** (GloVe 6B 50d; {recipe_name('scratch', corpora)})",
            scratch(lambda r: f"**{r['mean']:.2f} ± {r['std']:.2f}**"),
        ),
        line("rnnclf from scratch, each seed", scratch(lambda r: " / ".join(f"{a:.2f}" for a in r["accuracies"]))),
        line("rnnclf from scratch: training time per run (2 CPU cores)", scratch(time_cell)),
        line("rnnclf from scratch: validation accuracy", scratch(lambda r: f"{r['valid']:.2f}")),
    ]
    if all("fasttext" in rows[c] for c in corpora):
        lines.append(
            line(
                "fastText here, same splits (dim 100, bigrams, 25 epochs, lr 1.0, 2 threads)",
                lambda r: f"{r['fasttext']:.2f} ({r['fasttext_seconds']:.0f}s)",
            )
        )
    for name, published in PUBLISHED.items():
        lines.append(f"| {name}, published | " + " | ".join(f"{published[c]:.1f}" for c in corpora) + " |")
    lines.append("| target of issue 15 | " + " | ".join(f"{TARGETS[c]:.1f}" for c in corpora) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["r8", "r52", "20ng"], choices=list(CORPORA))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--no-fasttext", action="store_true", help="skip the fastText baseline")
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=["scratch", "pretrained"],
        choices=["scratch", "pretrained"],
        help="single-label recipes to run; the others' figures are kept from <out>/results.json",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    single_label = [corpus for corpus in args.corpora if not CORPORA[corpus].multi_label]
    if single_label:
        single_label_results(single_label, args.seeds, args.out, not args.no_fasttext, args.recipes)
    for corpus in args.corpora:
        if CORPORA[corpus].multi_label:
            multi_label_results(corpus, args.seeds, args.out, not args.no_fasttext)


if __name__ == "__main__":
    main()
