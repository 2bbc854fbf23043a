"""The fastText baselines of scripts/results.py, trained on the same splits in the same run: single-label
(accuracy on test) and multi-label (`-loss ova`, one global threshold tuned on held-out training texts)."""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from rnnclf.data.builtin import fetch
from rnnclf.evaluation.multilabel import multilabel_report
from rnnclf.evaluation.thresholds import tune_thresholds


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
