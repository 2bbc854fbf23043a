"""Fitting the wide (linear) head exactly: one-vs-rest squared hinge with L2, the loss and penalty of
scikit-learn's LinearSVC, minimised by L-BFGS on the whole training split at once.

    minimise  (1 / 2C) ||W||^2 + sum_i sum_k max(0, 1 - y_ik (x_i W_k + b_k))^2,   y_ik = +1 for i's label(s), -1

(divided by the number of texts; the bias is not penalised). Single- and multi-label alike: a label's score is
its margin, its decision "above 0". Each evaluation is two sparse products (rows x W as an embedding bag, X^T x
the margins' gradient), so a 20NG-sized problem (10k texts, 300k n-grams, 20 classes) costs about 0.1 s each.
C comes from wide.c, or from a short path of values chosen on the validation split (warm-started, cheap to
extend): fit_path.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rnnclf.data.ngrams import SparseRows

C_PATH = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # wide.c null: these, in order, while validation keeps improving
PATIENCE = 2  # values of C in a row that score no better than the best: the path stops
MAX_EVALUATIONS = 200
TOLERANCE = 1e-6  # the relative decrease of the objective at which an L-BFGS run stops
HISTORY = 10


@dataclass
class LinearProblem:
    """The training rows and targets, with X transposed once for the gradient."""

    rows: SparseRows
    signs: torch.Tensor  # (texts, classes): +1 where the class is the text's (or among its labels), else -1
    transposed: torch.Tensor  # X^T as a sparse CSR tensor (features, texts)
    features: int

    @classmethod
    def build(cls, rows: SparseRows, targets: np.ndarray, classes: int, features: int) -> LinearProblem:
        warnings.filterwarnings("ignore", message="Sparse (invariant checks|CSR tensor support)")
        if targets.ndim == 2:
            positive = torch.from_numpy(targets.astype(np.float32)) > 0.5
        else:
            positive = F.one_hot(torch.from_numpy(targets.astype(np.int64)), classes).bool()
        signs = positive.float() * 2 - 1
        coo = torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([np.repeat(np.arange(len(rows)), np.diff(rows.offsets)), rows.indices])),
            torch.from_numpy(rows.values),
            (len(rows), features),
        )
        return cls(rows, signs, coo.t().coalesce().to_sparse_csr(), features)


def margins(rows: SparseRows, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x_i W + b for every row: an embedding bag of the weight's rows, weighted by the row's values."""
    indices, offsets = torch.from_numpy(rows.indices), torch.from_numpy(rows.offsets[:-1])
    values = torch.from_numpy(rows.values)
    return F.embedding_bag(indices, weight, offsets, mode="sum", per_sample_weights=values) + bias


class OutOfTime(Exception):
    """The fit passed its deadline (the linear baseline beside a run gets a share of the run's time)."""


def fit(problem: LinearProblem, weight: torch.Tensor, bias: torch.Tensor, c: float, deadline: float = math.inf) -> int:
    """Minimise the objective at this C, starting from (and writing into) weight and bias. Returns the number of
    evaluations it took; raises OutOfTime past `deadline` (time.perf_counter's clock)."""
    n, classes = problem.signs.shape

    def evaluate(flat: torch.Tensor) -> tuple[float, torch.Tensor]:
        if time.perf_counter() > deadline:
            raise OutOfTime
        w, b = flat[:-classes].view(problem.features, classes), flat[-classes:]
        slack = torch.clamp(1 - problem.signs * margins(problem.rows, w, b), min=0)
        d_margins = -2 * problem.signs * slack / n
        grad_w = torch.sparse.mm(problem.transposed, d_margins) + w / (c * n)
        loss = float((slack**2).sum() / n + (w * w).sum() / (2 * c * n))
        return loss, torch.cat([grad_w.flatten(), d_margins.sum(0)])

    flat, evaluations = lbfgs(evaluate, torch.cat([weight.detach().flatten(), bias.detach()]))
    with torch.no_grad():
        weight.copy_(flat[:-classes].view_as(weight))
        bias.copy_(flat[-classes:])
    return evaluations


def lbfgs(evaluate: Callable[[torch.Tensor], tuple[float, torch.Tensor]], x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Limited-memory BFGS (Nocedal & Wright, algorithm 7.4) with a backtracking (Armijo) line search: for a convex,
    once-differentiable objective. Stops when an iteration lowers it by less than TOLERANCE (relative), or after
    MAX_EVALUATIONS evaluations. Returns the point and the evaluations."""
    loss, grad = evaluate(x)
    evaluations, steps, changes = 1, [], []
    while evaluations < MAX_EVALUATIONS:
        direction = -two_loop(grad, steps, changes)
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction (curvature lost): start again from the gradient
            steps, changes, direction = [], [], -grad
            slope = float(grad @ direction)
        size = 1.0 if steps else min(1.0, 1.0 / max(float(grad.abs().sum()), 1e-12))
        while True:
            candidate = x + size * direction
            new_loss, new_grad = evaluate(candidate)
            evaluations += 1
            if new_loss <= loss + 1e-4 * size * slope or evaluations >= MAX_EVALUATIONS:
                break
            size /= 2
        step, change = candidate - x, new_grad - grad
        if float(change @ step) > 1e-12:
            steps, changes = (steps + [step])[-HISTORY:], (changes + [change])[-HISTORY:]
        done = loss - new_loss <= TOLERANCE * max(abs(loss), 1e-12)
        x, loss, grad = candidate, new_loss, new_grad
        if done:
            break
    return x, evaluations


def two_loop(grad: torch.Tensor, steps: list[torch.Tensor], changes: list[torch.Tensor]) -> torch.Tensor:
    """The inverse Hessian estimate times the gradient, from the last steps and gradient changes."""
    q, alphas = grad.clone(), []
    for step, change in zip(reversed(steps), reversed(changes), strict=True):
        alpha = float(step @ q) / float(change @ step)
        alphas.append(alpha)
        q -= alpha * change
    if steps:
        q *= float(steps[-1] @ changes[-1]) / float(changes[-1] @ changes[-1])
    for step, change, alpha in zip(steps, changes, reversed(alphas), strict=True):
        q += (alpha - float(change @ q) / float(change @ step)) * step
    return q


@dataclass
class PathPoint:
    c: float
    score: float
    evaluations: int
    seconds: float


def fit_path(
    problem: LinearProblem,
    weight: torch.Tensor,
    bias: torch.Tensor,
    valid_score: Callable[[], float],
    path: tuple[float, ...] = C_PATH,
    log: Callable[[str], None] = lambda line: None,
    deadline: float = math.inf,
) -> tuple[float, list[PathPoint]]:
    """Fit at each C of `path` in turn (each from the last), until two in a row score no better on validation than
    the best; leaves weight and bias at the best C (ties: the smaller C, the simpler model). Returns it and every
    point."""
    points: list[PathPoint] = []
    best: tuple[float, float, torch.Tensor, torch.Tensor] | None = None  # score, C, weight, bias
    for c in path:
        started = time.perf_counter()
        evaluations = fit(problem, weight, bias, c, deadline)
        score = valid_score()
        points.append(PathPoint(c, score, evaluations, time.perf_counter() - started))
        log(f"wide head: C {c:g}, valid {score:.4f} ({evaluations} evaluations, {points[-1].seconds:.1f}s)")
        if best is None or score > best[0] + 1e-12:
            best = (score, c, weight.detach().clone(), bias.detach().clone())
        elif len(points) - next(i for i, p in enumerate(points) if p.c == best[1]) > PATIENCE:
            break
    assert best is not None
    with torch.no_grad():
        weight.copy_(best[2])
        bias.copy_(best[3])
    return best[1], points
