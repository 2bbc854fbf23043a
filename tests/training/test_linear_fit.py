"""The wide head's exact fit minimises scikit-learn LinearSVC's objective (one-vs-rest squared hinge, L2): checked by
evaluating that objective at both solutions, and by the decisions they make."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rnnclf.data.ngrams import fit_ngrams
from rnnclf.training.linear_fit import LinearProblem, fit, fit_path, margins

TOPICS = {
    "sport": "match goal team coach league score",
    "money": "bank profit shares loan market price",
    "weather": "rain storm sunny wind cloud cold",
}
FILLER = "the a of and to in was it on with".split()


def corpus(count: int, seed: int, noise: float = 0.15) -> tuple[list[str], np.ndarray]:
    """Texts with words of their topic among filler; `noise` of them carry another topic's words too."""
    rng = random.Random(seed)
    names = list(TOPICS)
    texts, labels = [], []
    for _ in range(count):
        label = rng.randrange(len(names))
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 10))]
        words += rng.sample(TOPICS[names[label]].split(), 2)
        if rng.random() < noise:
            words += rng.sample(TOPICS[names[(label + 1) % len(names)]].split(), 2)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.array(labels)


def objective(problem: LinearProblem, weight: torch.Tensor, bias: torch.Tensor, c: float) -> float:
    slack = torch.clamp(1 - problem.signs * margins(problem.rows, weight, bias), min=0)
    return float((weight * weight).sum() / 2 + c * (slack**2).sum())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("c", [0.1, 1.0, 10.0])
def test_the_optimum_of_linear_svc_objective(c):
    svm = pytest.importorskip("sklearn.svm")
    texts, labels = corpus(400, seed=1)
    features = fit_ngrams(texts)
    rows = features.transform(texts)
    problem = LinearProblem.build(rows, labels, 3, features.size)
    weight, bias = torch.zeros(features.size, 3), torch.zeros(3)
    fit(problem, weight, bias, c)
    dense = np.zeros((len(texts), features.size), dtype=np.float64)
    for i in range(len(texts)):
        dense[i, rows.indices[rows.offsets[i] : rows.offsets[i + 1]]] = rows.values[
            rows.offsets[i] : rows.offsets[i + 1]
        ]
    # scikit-learn penalises the intercept (intercept_scaling): give it a large scaling, so it hardly is
    theirs = svm.LinearSVC(C=c, intercept_scaling=100.0, tol=1e-8, max_iter=100_000).fit(dense, labels)
    their_weight = torch.from_numpy(theirs.coef_.T.astype(np.float32))
    their_bias = torch.from_numpy(theirs.intercept_.astype(np.float32))
    ours, at_theirs = objective(problem, weight, bias, c), objective(problem, their_weight, their_bias, c)
    assert ours <= at_theirs * (1 + 1e-4)  # ours is the minimum (theirs penalises its bias a little)
    assert ours == pytest.approx(at_theirs, rel=2e-2)
    our_labels = margins(rows, weight, bias).argmax(1).numpy()
    assert (our_labels == theirs.predict(dense)).mean() >= 0.99


def test_the_path_keeps_the_best_c_on_validation():
    texts, labels = corpus(300, seed=2, noise=0.3)
    valid_texts, valid_labels = corpus(150, seed=3, noise=0.3)
    features = fit_ngrams(texts)
    problem = LinearProblem.build(features.transform(texts), labels, 3, features.size)
    valid = features.transform(valid_texts)
    weight, bias = torch.zeros(features.size, 3), torch.zeros(3)

    def accuracy() -> float:
        return float((margins(valid, weight, bias).argmax(1).numpy() == valid_labels).mean())

    chosen, points = fit_path(problem, weight, bias, accuracy, (0.01, 0.1, 1.0, 10.0, 100.0))
    best = max(p.score for p in points)
    assert chosen == next(p.c for p in points if p.score == best)  # the first (smallest) C scoring best
    assert accuracy() == best  # the weights left are that C's
    after = points[[p.c for p in points].index(chosen) + 1 :]
    assert all(p.score <= best for p in after)
    assert len(points) == 5 or len(after) == 2  # the path stops after two values of C no better than the best


def test_multi_label_targets_are_one_problem_per_label():
    texts, labels = corpus(300, seed=4)
    targets = np.eye(3, dtype=np.float32)[labels]
    targets[::7, 0] = 1.0  # some texts carry label 0 as well
    features = fit_ngrams(texts)
    rows = features.transform(texts)
    problem = LinearProblem.build(rows, targets, 3, features.size)
    assert problem.signs.tolist() == (targets * 2 - 1).tolist()
    weight, bias = torch.zeros(features.size, 3), torch.zeros(3)
    fit(problem, weight, bias, 1.0)
    decided = (margins(rows, weight, bias) > 0).numpy()
    assert (decided == (targets > 0.5)).mean() > 0.95
