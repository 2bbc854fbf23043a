"""Why a run decided what it did: integrated gradients over the token embeddings (Sundararajan et al., 2017).

A token's score is (x - baseline) · the mean gradient of the explained label's score along the straight path
from the baseline to the text's embeddings x, summed over the embedding's dimensions. The scores add up to
f(x) - f(baseline) (completeness), up to the error of the quadrature.

- Baseline: zero embeddings, a text of as many tokens that carry nothing. It is also the pad embedding
  (padding_idx keeps that row zero), so the baseline is the model's own "no word here".
- f: the label's log-odds from the model's logits, log p / (1 - p). For a single-label run that is
  z_label - logsumexp(the other logits), for a multi-label run the label's own logit. Log-odds are what the
  decision turns on (a shift common to every logit cancels, so a token only scores for what separates the
  labels) and, unlike the probability, they do not saturate. A fitted temperature divides logits; the
  explanation is of the model's logits before it (for two labels or multi-label the temperature would only
  scale every score by the same 1 / T).
- The path integral: Gauss-Legendre nodes on [0, 1] (exact for polynomials of degree 2 * steps - 1), the
  steps of one text batched together.
- Which labels: the predicted label; for a multi-label run each label over its threshold, or the most
  probable label when none is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from tokenizers import Tokenizer

from rnnclf.data.tokenizer import UNK, character_limit
from rnnclf.errors import RnnclfError
from rnnclf.inference.decisions import LabelSet
from rnnclf.inference.explain_ngrams import ngram_contributions
from rnnclf.inference.predictor import Predictor
from rnnclf.models.classifier import RNNClassifier

DEFAULT_STEPS = 32
MAX_STEPS = 1024
TOKEN_STEPS_PER_PASS = 16_384  # a pass holds at most this many (step, token) positions: bounded memory


@dataclass
class TokenView:
    """A text as the model saw it: its token ids (truncated to max_length) and the words to show for them (the
    tokenizer's tokens; an unknown token shows the original word, and is flagged)."""

    ids: list[int]
    words: list[str]
    unknown: list[bool]


@dataclass
class Attribution:
    """One label's explanation of one text: a score per token, and f(x), f(baseline) that the scores add up to
    the difference of (the label's log-odds)."""

    label: str
    probability: float
    words: list[str]
    unknown: list[bool]
    scores: np.ndarray
    value: float
    baseline: float
    ngrams: list[tuple[str, float]] = field(default_factory=list)  # a wide head's largest n-gram contributions
    ngram_total: float | None = None  # the wide head's share of the log-odds (explain_ngrams.py)


def token_views(tokenizer: Tokenizer, texts: Sequence[str]) -> list[TokenView]:
    """Each text's tokens as the run's tokenizer makes them; a text with no tokens is an error naming it."""
    limit = character_limit(tokenizer)
    views = []
    for position, text in enumerate(texts, start=1):
        cut = text[:limit]  # as rnnclf.data.tokenizer.encode cuts it
        encoding = tokenizer.encode(cut, add_special_tokens=False)
        if not encoding.ids:
            raise RnnclfError(f"text {position}: the tokenizer keeps no token of it; nothing to explain")
        unknown = [token == UNK for token in encoding.tokens]
        words = [
            cut[start:end] if missing and end > start else token
            for token, (start, end), missing in zip(encoding.tokens, encoding.offsets, unknown, strict=True)
        ]
        views.append(TokenView(list(encoding.ids), words, unknown))
    return views


def labels_to_explain(predictions: Sequence[list[tuple[str, float]]] | Sequence[LabelSet]) -> list[dict[str, float]]:
    """For each text, the labels to explain with their probabilities: the predicted label, or for a multi-label
    run the labels over their thresholds (the most probable label when none is)."""
    chosen = []
    for prediction in predictions:
        if isinstance(prediction, LabelSet):
            names = prediction.labels or list(prediction.scores)[:1]
            chosen.append({name: prediction.scores[name] for name in names})
        else:
            label, probability = prediction[0]
            chosen.append({label: probability})
    return chosen


def explain_predictions(
    predictor: Predictor,
    texts: Sequence[str],
    predictions: Sequence[list[tuple[str, float]]] | Sequence[LabelSet],
    steps: int = DEFAULT_STEPS,
) -> list[list[Attribution]]:
    """Attributions for each text's predicted label(s) (predictor.predict or predict_labels of the same texts):
    the tokens' by integrated gradients (the wide head's scores held as they are), and a wide head's n-grams. The
    linear model alone shows its words by the n-grams through them."""
    check_steps(steps)
    model = predictor.model
    views = token_views(predictor.tokenizer, texts) if model.deep else [None] * len(texts)
    explained = []
    for text, view, labels in zip(texts, views, labels_to_explain(predictions), strict=True):
        classes = [predictor.labels.index(label) for label in labels]
        logits = torch.from_numpy(predictor.model_logits(predictor.encode([text]))[0])
        offset = logits[None] - deep_logits(predictor, view) if model.wide is not None and model.deep else None
        found = (
            integrated_gradients(
                model, torch.tensor(view.ids, device=predictor.device), classes, predictor.multi_label, steps, offset
            )
            if model.deep
            else [None] * len(classes)
        )
        explained.append(
            [
                attribution(predictor, text, view, label, probability, logits, index, deep)
                for (label, probability), index, deep in zip(labels.items(), classes, found, strict=True)
            ]
        )
    return explained


def deep_logits(predictor: Predictor, view: TokenView) -> torch.Tensor:
    """The recurrent head's logits of one text alone (the wide head left out)."""
    with torch.no_grad():
        ids = torch.tensor([view.ids], device=predictor.device)
        return predictor.model(ids, torch.tensor([len(view.ids)])).float().cpu()


def attribution(
    predictor: Predictor, text: str, view: TokenView | None, label: str, probability: float, logits, index, deep
) -> Attribution:
    """One label's Attribution: the tokens' scores (integrated gradients), or for the linear model its words'."""
    model, multi_label = predictor.model, predictor.multi_label
    ngrams, total = [], None
    if model.wide is not None:
        ngrams, total, words, shares = ngram_contributions(
            predictor.run.wide, model.wide, text, logits, index, multi_label
        )
    if deep is not None:
        scores, value, baseline = deep
        return Attribution(label, probability, view.words, view.unknown, scores, value, baseline, ngrams, total)
    value = float(log_odds(logits[None], index, multi_label))
    empty = model.wide.bias.detach().float().cpu()[None] * model.wide.scale
    baseline = float(log_odds(empty, index, multi_label))
    return Attribution(label, probability, words, [False] * len(words), shares, value, baseline, ngrams, total)


def explain_texts(
    predictor: Predictor, texts: Sequence[str], top_k: int | None = None, steps: int = DEFAULT_STEPS
) -> tuple[list, list[list[Attribution]]]:
    """The predictions of `texts` as `rnnclf predict` gives them (multi-label: label sets), and their
    attributions: what `predict --explain` and `POST /explain` answer."""
    if predictor.multi_label:
        predictions = predictor.predict_labels(texts, top_k or 0)
    else:
        predictions = predictor.predict(texts, top_k or 1)
    return predictions, explain_predictions(predictor, texts, predictions, steps)


def check_steps(steps: int) -> None:
    if not 1 <= steps <= MAX_STEPS:
        raise RnnclfError(f"--explain-steps {steps}: give 1 to {MAX_STEPS} (default {DEFAULT_STEPS})")


def log_odds(logits: torch.Tensor, label: int, multi_label: bool) -> torch.Tensor:
    """log p / (1 - p) of `label` for each row of logits: the logit itself for a sigmoid, for a softmax the
    label's logit minus the log-sum-exp of the others."""
    if multi_label:
        return logits[:, label]
    others = torch.cat([logits[:, :label], logits[:, label + 1 :]], dim=1)
    return logits[:, label] - torch.logsumexp(others, dim=1)


def shifted(logits: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    return logits if offset is None else logits + offset.to(logits.device, logits.dtype)


def quadrature(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1] (the weights sum to 1)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return (nodes + 1) / 2, weights / 2


_cudnn_lock = threading.Lock()


@contextmanager
def without_cudnn(device: torch.device) -> Iterator[None]:
    """cuDNN off while a CUDA explanation runs (its recurrent kernels have no backward pass in eval mode). The
    switch is process-wide, so explanations take turns (serve runs requests in threads) and the switch is back on
    between them; a prediction that overlaps one runs without cuDNN, slower but the same. Nothing on the CPU."""
    if device.type != "cuda":
        yield
        return
    with _cudnn_lock, torch.backends.cudnn.flags(enabled=False):
        yield


def integrated_gradients(
    model: RNNClassifier,
    ids: torch.Tensor,
    labels: list[int],
    multi_label: bool,
    steps: int = DEFAULT_STEPS,
    offset: torch.Tensor | None = None,
) -> list[tuple[np.ndarray, float, float]]:
    """For one text's ids (time,) and each label: the score of every token, f(x) and f(baseline); `offset` (1,
    classes): logits added to the recurrent head's along the whole path (a wide head's scores of the text).

    Runs in float32 without autocast (gradients in bf16 are too coarse to rank tokens), on CUDA with cuDNN off
    (without_cudnn).
    """
    model.eval()
    nodes, weights = quadrature(steps)
    with torch.no_grad():
        x = model.embedding(ids[None]).float()  # (1, time, dim); the baseline is zeros
    length = ids.shape[0]
    per_pass = max(1, TOKEN_STEPS_PER_PASS // length)
    gradients = torch.zeros(len(labels), *x.shape[1:], device=x.device)
    with torch.enable_grad(), without_cudnn(x.device):
        for start in range(0, steps, per_pass):
            alphas = torch.tensor(nodes[start : start + per_pass], dtype=x.dtype, device=x.device)
            path = (alphas[:, None, None] * x).requires_grad_()
            logits = shifted(model.classify_embedded(path, torch.full((len(alphas),), length)), offset)
            step_weights = torch.tensor(weights[start : start + per_pass], dtype=x.dtype, device=x.device)
            for row, label in enumerate(labels):
                (grad,) = torch.autograd.grad(
                    log_odds(logits, label, multi_label).sum(), path, retain_graph=row + 1 < len(labels)
                )
                gradients[row] += torch.einsum("s,std->td", step_weights, grad)
        with torch.no_grad():
            ends = shifted(
                model.classify_embedded(torch.cat([torch.zeros_like(x), x]), torch.full((2,), length)), offset
            )
    scores = (gradients * x).sum(-1).cpu().numpy()
    found = []
    for row, label in enumerate(labels):
        baseline, value = log_odds(ends, label, multi_label).tolist()
        found.append((scores[row], value, baseline))
    return found
