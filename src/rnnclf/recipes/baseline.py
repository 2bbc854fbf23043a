"""The linear baseline beside every classifier run: TF-IDF n-grams and a linear model (the wide head alone, fitted
exactly as model.encoder none fits it) on the run's own splits. A run with a wide head has it already; any other
run fits it after training when that costs at most BUDGET of the run's training time, and otherwise says how to
run it. metrics.json records it, eval and report show it, and a run that scores below it on validation says so."""

from __future__ import annotations

import time
from typing import Any

import torch

from rnnclf.data.corpus import load_corpus
from rnnclf.data.ngrams import fit_ngrams
from rnnclf.evaluation.scores import scores
from rnnclf.recipes.wide import headline_metric
from rnnclf.training import distributed
from rnnclf.training.linear_fit import C_PATH, LinearProblem, OutOfTime, fit_path, margins

BUDGET = 0.10  # of the run's training time
SINGLE = ("accuracy", "macro_f1", "weighted_f1")
MULTI = ("micro_f1", "macro_f1", "samples_f1", "accuracy")


def linear_baseline(recipe: Any) -> dict[str, Any] | None:
    """The baseline's figures on valid (and test), or why there are none; None for the linear model itself and
    for tune's trials (they are compared on validation with each other)."""
    loop = recipe.loop
    if loop.trial or not loop.model.deep:
        return None
    started = time.perf_counter()
    if loop.model.wide is not None:  # the run's own wide head, fitted on these splits before the encoder trained
        wide = loop.model.wide
        rows = {split: encoded.wide for split, encoded in recipe.data.encoded.items()}
        found = figures(recipe, rows, wide.weight.detach().cpu(), wide.bias.detach().cpu())
        return found | {"c": loop.progress.summary["wide"]["c"], "seconds": 0.0, "from": "the run's wide head"}
    deadline = started + min(BUDGET * loop.progress.seconds, distributed.wait_limit(loop.group))
    try:
        found = fit_baseline(recipe, deadline)
    except OutOfTime:
        spent = time.perf_counter() - started
        command = "rnnclf train --config CONFIG --set model.encoder=none --set model.wide=true"
        loop.log(
            f"linear baseline: not fitted, it needs more than {BUDGET:.0%} of this run's training time ({spent:.0f}s "
            f"spent); fit it alone with: {command}"
        )
        return {"skipped": f"more than {BUDGET:.0%} of the run's training time", "command": command}
    return found | {"seconds": round(time.perf_counter() - started, 1), "from": "fitted after training"}


def config_path(command: list[str]) -> str:
    """The --config the run was started with (CONFIG when it cannot be told, e.g. a run started from Python)."""
    for flag in ("--config", "-c"):
        if flag in command[:-1]:
            return command[command.index(flag) + 1]
    return next((arg.split("=", 1)[1] for arg in command if arg.startswith("--config=")), "CONFIG")


def fit_baseline(recipe: Any, deadline: float) -> dict[str, Any]:
    """TF-IDF n-grams (the config's wide.* settings) fitted on the training texts, the linear fit along the C
    path, both within the deadline."""
    config = recipe.loop.config
    corpus = load_corpus(config.data, config.train.seed, recipe.labels)
    splits = {"train": corpus.train, "valid": corpus.valid, "test": corpus.test}
    texts = {name: list(splits[name].texts) for name in recipe.data.encoded}
    for name, split in (recipe.old or {}).items():  # data.rehearsal: the earlier run's texts, as in training
        texts[name] += list(split.texts)
    w = config.wide
    features = fit_ngrams(
        texts["train"], w.ngrams, w.min_df, w.max_features, w.sublinear_tf, config.tokenizer.lowercase
    )
    rows = {name: features.transform(texts[name]) for name in recipe.data.encoded}
    if time.perf_counter() > deadline:
        raise OutOfTime
    problem = LinearProblem.build(rows["train"], recipe.gold_targets(), len(recipe.labels), features.size)
    weight, bias = torch.zeros(features.size, len(recipe.labels)), torch.zeros(len(recipe.labels))
    metric = headline_metric(recipe)

    def valid_score() -> float:
        return scores(margins(rows["valid"], weight, bias).numpy(), recipe.data.targets["valid"], recipe.labels)[metric]

    path = (w.c,) if w.c else C_PATH
    chosen, _ = fit_path(problem, weight, bias, valid_score, path, deadline=deadline)
    return figures(recipe, rows, weight, bias) | {"c": chosen}


def figures(recipe: Any, rows: dict[str, Any], weight: torch.Tensor, bias: torch.Tensor) -> dict[str, Any]:
    keys = MULTI if recipe.multi_label else SINGLE
    found: dict[str, Any] = {"features": int(weight.shape[0])}
    for split in ("valid", "test"):
        if split not in rows:
            found[split] = None
            continue
        with torch.no_grad():
            logits = margins(rows[split], weight, bias).numpy()
        report = scores(logits, recipe.data.targets[split], recipe.labels)
        found[split] = {key: report[key] for key in keys}
    return found


def say_if_behind(recipe: Any, valid: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    """One line at the end of training when the run scores below its linear baseline on validation."""
    if not baseline or not baseline.get("valid"):
        return
    metric = headline_metric(recipe)
    ours, theirs = valid[metric], baseline["valid"][metric]
    if theirs > ours + 1e-12:
        recipe.loop.log(
            f"rnnclf: warning: the linear baseline scores higher on validation ({metric.replace('_', ' ')} "
            f"{theirs:.4f} against this run's {ours:.4f}); model.wide: true adds it to the model, model.encoder: "
            "none trains it alone"
        )
