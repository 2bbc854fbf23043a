"""The linear anchor of every results table: TF-IDF word 1-2-grams and a LinearSVC (scikit-learn), on the same
splits rnnclf trains on, run by us.

    .venv/bin/python scripts/linear_baseline.py [--corpora r8 r52 20ng reuters21578] [--out results]

Setup (as issue #23 states it): TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
max_features=500_000) fitted on the training texts; LinearSVC with C chosen on the held-out tenth of train that
rnnclf carves as its validation split (train.seed 0, stratified; iterative stratification for multi-label), then
refit on the whole training split and scored once on test. Multi-label (reuters21578): one LinearSVC per topic
(one-vs-rest), a topic predicted where its decision value is above 0, C chosen by validation micro-F1.
Single-threaded LinearSVC; the time is the whole fit (grid, refit, vectorising) on this machine.

Beside it, rnnclf's own linear model (model.encoder none, model.wide: the same n-grams and loss, C chosen on the
same validation tenth, trained on the other nine tenths only, as every rnnclf run is): `rnnclf train` as a user runs
it, its whole process timed. Writes OUT/linear_baseline.json and OUT/linear_baseline.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC

from rnnclf.config.schema import DataConfig
from rnnclf.data.corpus import load_corpus

ROOT = Path(__file__).resolve().parent.parent
GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
VECTORIZER = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True, "max_features": 500_000}
CORPORA = ("r8", "r52", "20ng", "reuters21578")
MULTI_LABEL = {"reuters21578"}


def splits(corpus: str) -> dict[str, tuple[list[str], list]]:
    """rnnclf's own train / valid / test of a built-in corpus (valid: the tenth carved with train.seed 0)."""
    data = DataConfig(dataset=corpus, multi_label=corpus in MULTI_LABEL)
    loaded = load_corpus(data, seed=0)
    parts = {"train": loaded.train, "valid": loaded.valid, "test": loaded.test}
    return {name: (list(split.texts), list(split.labels)) for name, split in parts.items()}


def model(c: float, multi_label: bool):
    svc = LinearSVC(C=c)
    return OneVsRestClassifier(svc) if multi_label else svc


def score(truth, predicted, multi_label: bool) -> dict[str, float]:
    if multi_label:
        return {
            "micro_f1": f1_score(truth, predicted, average="micro", zero_division=0),
            "macro_f1": f1_score(truth, predicted, average="macro", zero_division=0),
        }
    return {"accuracy": accuracy_score(truth, predicted), "macro_f1": f1_score(truth, predicted, average="macro")}


def fit_and_score(train, test, c: float, multi_label: bool, binarizer) -> dict[str, float]:
    vectorizer = TfidfVectorizer(**VECTORIZER)
    features = vectorizer.fit_transform(train[0])
    targets = binarizer.transform(train[1]) if multi_label else train[1]
    fitted = model(c, multi_label).fit(features, targets)
    truth = binarizer.transform(test[1]) if multi_label else test[1]
    return score(truth, fitted.predict(vectorizer.transform(test[0])), multi_label)


def run_corpus(corpus: str) -> dict:
    multi_label = corpus in MULTI_LABEL
    parts = splits(corpus)
    whole = (parts["train"][0] + parts["valid"][0], parts["train"][1] + parts["valid"][1])
    # the topics of the whole training split (the built-in corpus keeps only topics that train and test share)
    binarizer = MultiLabelBinarizer().fit(whole[1]) if multi_label else None
    headline = "micro_f1" if multi_label else "accuracy"
    started = time.perf_counter()
    # choose C on the held-out tenth, then refit on the whole training split (train + that tenth)
    grid = {c: fit_and_score(parts["train"], parts["valid"], c, multi_label, binarizer)[headline] for c in GRID}
    best = max(GRID, key=lambda c: (grid[c], -abs(np.log10(c))))
    test = fit_and_score(whole, parts["test"], best, multi_label, binarizer)
    return {
        "corpus": corpus,
        "sizes": {name: len(part[1]) for name, part in parts.items()},
        "grid": {str(c): round(value, 6) for c, value in grid.items()},
        "C": best,
        "test": test,
        "seconds": round(time.perf_counter() - started, 1),
    }


def rnnclf_linear(corpus: str, out: Path) -> dict:
    """`rnnclf train` of the linear model alone on the corpus (its run in OUT/runs/linear-<corpus>): test figures
    and the whole process's seconds."""
    run = out / "runs" / f"linear-{corpus}"
    if run.exists():
        shutil.rmtree(run)
    multi = ["--set", "data.multi_label=true"] if corpus in MULTI_LABEL else []
    command = [sys.executable, "-m", "rnnclf", "train", "--config", str(ROOT / "configs" / "linear.yaml")]
    command += ["--set", f"data.dataset={corpus}", *multi, "--run-dir", str(run)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    summary = json.loads((run / "metrics.json").read_text())
    keys = ("micro_f1", "macro_f1") if corpus in MULTI_LABEL else ("accuracy", "macro_f1")
    return {
        "test": {key: summary["test"][key] for key in keys},
        "C": summary["wide"]["c"],
        "seconds": round(seconds, 1),
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Linear anchor: TF-IDF 1-2-grams + LinearSVC (scikit-learn), and rnnclf's own linear model",
        "",
        f"Made by scripts/linear_baseline.py on {platform.processor() or platform.machine()}, "
        f"{datetime.now(UTC):%Y-%m-%d}. scikit-learn: C chosen on rnnclf's validation tenth (train.seed 0), refit on "
        "all of train, test once. rnnclf: `rnnclf train --config configs/linear.yaml` (C chosen on the same tenth, "
        "trained on the other nine tenths), the whole process timed.",
        "",
        "| corpus | scikit-learn test | macro F1 | C | seconds | rnnclf linear test | macro F1 | C | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = f"{row['corpus']} ({'micro F1' if 'micro_f1' in row['test'] else 'accuracy'})"
        cells = [name, *model_cells(row)]
        cells += model_cells(row["rnnclf"]) if "rnnclf" in row else ["-"] * 4
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def model_cells(model: dict) -> list[str]:
    """Headline (accuracy or micro F1), macro F1, C and seconds of one model's row."""
    test = model["test"]
    headline = test.get("accuracy", test.get("micro_f1"))
    return [f"{100 * headline:.2f}", f"{100 * test['macro_f1']:.2f}", f"{model['C']:g}", f"{model['seconds']}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=CORPORA)
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--no-rnnclf", action="store_true", help="only scikit-learn's model")
    args = parser.parse_args()
    rows = []
    for corpus in args.corpora:
        rows.append(run_corpus(corpus))
        if not args.no_rnnclf:
            rows[-1]["rnnclf"] = rnnclf_linear(corpus, args.out)
        print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "linear_baseline.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "linear_baseline.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
