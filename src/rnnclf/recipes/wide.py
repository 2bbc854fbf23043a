"""A classifier's wide head (model.wide) in training: its n-grams fitted on the training texts and attached to every
split, the exact linear fit before the encoder trains (C chosen on validation), and the weight of its scores in
the sum with the recurrent head, chosen on validation after every epoch.

The two heads learn apart, then vote: the wide head is a linear model fitted to its optimum (training/linear_fit.py)
and frozen; the recurrent head trains on its own loss, as it would without the wide head; the sum of their scores
is weighed on validation. Trained through one loss instead, the wide head fits the training texts in a few steps
and leaves the recurrent head almost nothing to learn from (measured in docs/results.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rnnclf.data.corpus import load_corpus
from rnnclf.data.ngrams import NgramFeatures, fit_ngrams
from rnnclf.evaluation.scores import scores
from rnnclf.models.classifier import RNNClassifier
from rnnclf.training.linear_fit import C_PATH, LinearProblem, fit_path, margins

SCALES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # the wide scores' weight, chosen on validation


def attach_ngrams(recipe: Any, extra: Sequence[str] = ()) -> NgramFeatures:
    """The n-gram vocabulary (fitted on the training texts and `extra` ones, or the resumed run's), and every split's
    rows of it attached to its token ids (EncodedTexts.wide)."""
    loop = recipe.loop
    config, settings = loop.config, loop.config.wide
    corpus = load_corpus(config.data, config.train.seed, recipe.labels)
    splits = {"train": corpus.train, "valid": corpus.valid, "test": corpus.test}
    if recipe.previous is not None and recipe.previous.wide is not None:
        features = recipe.previous.wide
    else:
        texts = list(corpus.train.texts) + list(extra)
        lowercase = config.tokenizer.lowercase
        features = fit_ngrams(
            texts, settings.ngrams, settings.min_df, settings.max_features, settings.sublinear_tf, lowercase
        )
    for name, encoded in recipe.data.encoded.items():
        encoded.wide = features.transform(splits[name].texts)
    loop.log(
        f"wide head: {features.size:,} n-grams of 1 to {settings.ngrams} words in at least {settings.min_df} "
        f"training texts{' (at most ' + format(settings.max_features, ',') + ')' if features.size == settings.max_features else ''}"
    )
    return features


def headline_metric(recipe: Any) -> str:
    """What chooses C and the wide scores' weight: train.metric, or for `loss` the accuracy (micro F1)."""
    metric = recipe.loop.tc.metric
    if metric == "loss":
        return "micro_f1" if recipe.multi_label else "accuracy"
    return metric


def wide_scores(model: RNNClassifier, rows: Any) -> np.ndarray:
    """The wide head's scores (unscaled) of every row."""
    with torch.no_grad():
        return margins(rows, model.wide.weight.detach().cpu(), model.wide.bias.detach().cpu()).numpy()


def fit_wide(recipe: Any, model: RNNClassifier) -> dict[str, Any]:
    """Fit the wide head exactly on the training split, C from wide.c or chosen on validation; then freeze it.
    Returns what metrics.json records of it."""
    loop = recipe.loop
    valid = recipe.data.encoded["valid"]
    rows, gold = recipe.data.encoded["train"].wide, recipe.gold_rows()  # not the rows a teacher labelled
    problem = LinearProblem.build(
        rows if gold is None else rows.take(gold), recipe.gold_targets(), len(recipe.labels), model.wide.weight.shape[0]
    )
    metric = headline_metric(recipe)

    def valid_score() -> float:
        report = scores(wide_scores(model, valid.wide), recipe.data.targets["valid"], recipe.labels)
        return report[metric]

    path = (loop.config.wide.c,) if loop.config.wide.c else C_PATH
    chosen, points = fit_path(problem, model.wide.weight.data, model.wide.bias.data, valid_score, path, loop.log)
    model.wide.weight.requires_grad_(False)
    model.wide.bias.requires_grad_(False)
    best = next(point for point in points if point.c == chosen)
    loop.log(f"wide head: C {chosen:g} (valid {metric} {best.score:.4f})")
    return {
        "features": int(model.wide.weight.shape[0]),
        "c": chosen,
        "path": [
            {"c": p.c, f"valid_{metric}": p.score, "evaluations": p.evaluations, "seconds": p.seconds} for p in points
        ],
    }


def choose_scale(recipe: Any, deep: np.ndarray, wide: np.ndarray) -> tuple[float, np.ndarray]:
    """The weight of the wide scores in deep + weight * wide that scores best on validation (ties: the lower
    validation loss), and the summed logits at it."""
    targets, labels, metric = recipe.data.targets["valid"], recipe.labels, headline_metric(recipe)
    best: tuple[float, float, float] | None = None
    for scale in SCALES:
        report = scores(deep + scale * wide, targets, labels)
        key = (report[metric], -report["loss"])
        if best is None or key > best[:2]:
            best = (*key, scale)
    return best[2], deep + best[2] * wide
