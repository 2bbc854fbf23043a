"""Distillation in training (train.teacher): the teacher's logits for every training text, and the texts without
gold labels that join the training split with the teacher's (data.unlabelled, and train.teacher_augment altered
copies of the training texts, as Tang et al. 2019 did). The loss that uses them is training.losses.DistillLoss.

Rows [0, gold) of the training split keep their gold labels; the rows after them have the teacher's most
probable label (multi-label: its labels over 1/2) as their target, which counts only in the train accuracy
shown: their loss is the teacher's term alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.data.corpus import load_corpus
from rnnclf.data.tokenizer import concatenate, encode
from rnnclf.data.unlabelled import read_unlabelled
from rnnclf.errors import RnnclfError
from rnnclf.recipes.teacher import Teacher, find_teacher, teacher_logits
from rnnclf.training import distributed, session

DROP, SPAN = 0.1, 0.25  # an augmented copy drops each word with DROP; SPAN of the copies keep a random span


@dataclass
class Distillation:
    teacher: Teacher
    logits: np.ndarray  # float32 (training rows, labels): the teacher's logits of every row
    gold: np.ndarray  # bool (training rows,): whether the row has a gold label
    counts: dict[str, int]
    extra: list[str]  # the texts without gold labels, in the order of their rows after the training split's

    def record(self, config: Any) -> dict[str, Any]:
        """What metrics.json and env.json say of the teacher."""
        train = config.train
        return {
            **self.teacher.record(),
            "loss": train.teacher_loss,
            "temperature": train.teacher_temperature,
            "weight": train.teacher_weight,
            "texts": self.counts,
        }


def teacher_outputs(recipe: Any) -> Distillation:
    """The teacher's logits of the training texts, data.unlabelled and the augmented copies; before the data is
    tokenized, so that a teacher that does not fit is one line before any work. Rank 0 computes them (into the
    cache); the other processes then read them."""
    loop, config = recipe.loop, recipe.loop.config
    teacher = find_teacher(Path(config.train.teacher))
    check_same_teacher(recipe, teacher)
    known = recipe.previous.labels if recipe.previous else recipe.start.labels if recipe.start else ()
    corpus = load_corpus(config.data, config.train.seed, known)
    texts = list(corpus.train.texts)
    rows = corpus.train.rows
    lines: list[int | None] = list(rows) if len(rows) == len(texts) else [None] * len(texts)
    unlabelled = [text for file in config.data.unlabelled for text in read_unlabelled(Path(file), config.data)]
    augmented = augment(texts, config.train.teacher_augment, config.train.seed)
    extra = unlabelled + augmented
    if not loop.group.main:
        distributed.barrier(loop.group)
    logits = teacher_logits(
        teacher,
        texts + extra,
        lines + [None] * len(extra),
        corpus.labels,
        config.data.multi_label,
        loop.log,
        config.train.device,
    )
    if loop.group.main:
        distributed.barrier(loop.group)
    gold = np.zeros(len(texts) + len(extra), dtype=bool)
    gold[: len(texts)] = True
    counts = {"gold": len(texts), "unlabelled": len(unlabelled), "augmented": len(augmented)}
    return Distillation(teacher, logits, gold, counts, extra)


def join_training(recipe: Any, distillation: Distillation) -> None:
    """The texts without gold labels after the training split's, once it is tokenized (and its n-grams found)."""
    loop, train = recipe.loop, recipe.loop.config.train
    if distillation.extra:
        append_texts(recipe, distillation.extra, distillation.logits[distillation.counts["gold"] :])
    counts = distillation.counts
    loop.log(
        f"teacher: {train.teacher_loss} loss (weight {train.teacher_weight:g}"
        + (f", temperature {train.teacher_temperature:g}" if train.teacher_loss == "kl" else "")
        + f") on {counts['gold']:,} gold texts, {counts['unlabelled']:,} unlabelled and {counts['augmented']:,} "
        "augmented"
    )


def append_texts(recipe: Any, texts: list[str], logits: np.ndarray) -> None:
    """Texts without gold labels, after the training split's: token ids, n-gram rows, the teacher's labels."""
    data = recipe.data
    encoded = encode(data.tokenizer, texts)
    train = data.encoded["train"]
    if train.wide is not None:
        encoded.wide = recipe.features.transform(texts)
    data.encoded["train"] = concatenate([train, encoded])
    hard = (logits > 0).astype(np.float32) if recipe.multi_label else logits.argmax(axis=1)
    data.targets["train"] = np.concatenate([data.targets["train"], hard.astype(data.targets["train"].dtype)])


def augment(texts: list[str], copies: int, seed: int) -> list[str]:
    """`copies` altered copies of each text: each word dropped with probability DROP (one kept at least), and a
    share SPAN of the copies cut to a random span of half to all of their words. Seeded."""
    rng = np.random.default_rng([seed, 20190328])
    out = []
    for _ in range(copies):
        for text in texts:
            words = text.split()
            if len(words) > 1:
                keep = rng.random(len(words)) >= DROP
                keep[rng.integers(len(words))] = True
                words = [word for word, kept in zip(words, keep, strict=True) if kept]
            if len(words) > 2 and rng.random() < SPAN:
                span = int(rng.integers(len(words) // 2, len(words) + 1))
                start = int(rng.integers(0, len(words) - span + 1))
                words = words[start : start + span]
            out.append(" ".join(words) or text)
    return out


def check_same_teacher(recipe: Any, teacher: Teacher) -> None:
    """A resumed run continues with the teacher it started with, unchanged."""
    if recipe.previous is None:
        return
    started = (session.read_environment(recipe.previous.path) or {}).get("teacher") or {}
    if started.get("digest") not in (None, teacher.digest):
        raise RnnclfError(
            f"train.teacher: {teacher.path} changed since the run {recipe.previous.path} started (its digest "
            "differs); resume with the same teacher, or train a new run"
        )
