"""When not to trust a prediction: prediction sets with a coverage guarantee (split-conformal, fitted on the
validation split: evaluation/conformal.py) and out-of-domain flags, from what a run already has.

conformal.json holds the validation texts' conformal scores and the share of unknown tokens in them. A text is
flagged as out of domain, with the reason, when
- most of its tokens are unknown to the model: at least UNKNOWN_FLOOR of them, and more than 99 in 100 validation
  texts have (another language, random characters, a different kind of text);
- no label is plausible (single-label, train.conformal lac): even the OOD_COVERAGE prediction set is empty, i.e.
  its most probable label is less probable than the true label of 99 in 100 validation texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.data.tokenizer import UNK_ID, EncodedTexts, encode
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import probabilities
from rnnclf.evaluation.conformal import MULTI_LABEL_METHOD, Conformal, abstains, check_coverage, fit_conformal
from rnnclf.files import CONFORMAL
from rnnclf.inference.decisions import check_texts

UNKNOWN_FLOOR = 0.5  # a text with fewer unknown tokens than this is never flagged for them
OOD_COVERAGE = 0.99
SHARE_CHARACTERS = 500  # where the model's own token ids are not at hand, the unknown share of each text's start


def unknown_shares(encoded: EncodedTexts) -> np.ndarray:
    """Each text's share of tokens the model does not know (<unk>); 1 for a text with no tokens at all."""
    lengths = encoded.lengths
    unknown = np.zeros(len(lengths))
    filled = lengths > 0
    if filled.any():
        counts = np.add.reduceat((encoded.ids == UNK_ID).astype(np.float64), encoded.offsets[:-1][filled])
        unknown[filled] = counts / lengths[filled]
    unknown[~filled] = 1.0
    return unknown


def fit_trust(
    probs: np.ndarray, targets: np.ndarray, labels: list[str], method: str, shares: np.ndarray, fitted_on: str
) -> dict[str, Any]:
    """conformal.json: the conformal scores of the labelled texts (method: train.conformal; multi-label runs
    control recall) and the spread of their unknown-token shares."""
    payload = fit_conformal(probs, targets, labels, MULTI_LABEL_METHOD if targets.ndim == 2 else method)
    payload["fitted_on"] = fitted_on
    payload["unknown_share"] = {
        "p99": round(float(np.quantile(shares, OOD_COVERAGE)), 6) if len(shares) else 0.0,
        "mean": round(float(shares.mean()), 6) if len(shares) else 0.0,
    }
    return payload


@dataclass
class Trust:
    """A run's conformal.json, read: prediction sets at any coverage, and the unknown-token share it flags."""

    conformal: Conformal
    unknown_p99: float
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def unknown_limit(self) -> float:
        return max(UNKNOWN_FLOOR, self.unknown_p99)


def load_trust(path: Path, labels: list[str], multi_label: bool) -> Trust | None:
    """RUN/conformal.json, or None for a run without one."""
    file = Path(path) / CONFORMAL
    if not file.exists():
        return None
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RnnclfError(
            f"{file}: not valid JSON; the run directory is damaged (rnnclf calibrate writes it again)"
        ) from None
    conformal = Conformal.from_payload(payload, labels, multi_label, str(file))
    share = (payload.get("unknown_share") or {}).get("p99", 0.0)
    if not isinstance(share, int | float) or not 0 <= share <= 1:
        raise RnnclfError(f"{file}: 'unknown_share' is not a share; the run directory is damaged")
    return Trust(conformal, float(share), payload)


def require_trust(path: Path, labels: list[str], multi_label: bool, coverage: float) -> Trust:
    """The run's conformal data for --coverage (checked first), or one line saying how to get it."""
    check_coverage(coverage)
    trust = load_trust(path, labels, multi_label)
    if trust is None:
        raise RnnclfError(
            f"{path}: no prediction sets fitted ({CONFORMAL}; runs trained before rnnclf had them, or an ensemble); "
            f"fit them on its validation split with: rnnclf calibrate {path}"
        )
    return trust


@dataclass
class Judgement:
    """What --coverage and the out-of-domain check say of one text: its prediction set (labels, most probable
    first), whether the set reads as 'abstain' (empty, or every label), and why it looks out of domain."""

    labels: list[str] | None = None
    abstain: bool | None = None
    out_of_domain: list[str] = field(default_factory=list)


def judge(
    trust: Trust | None, probs: np.ndarray, shares: np.ndarray | None, labels: list[str], coverage: float | None
) -> list[Judgement]:
    """Each text's prediction set at `coverage` (when asked) and out-of-domain reasons."""
    judged = [Judgement() for _ in range(len(probs))]
    if coverage is not None and trust is not None:
        sets = trust.conformal.sets(probs, coverage)
        abstaining = abstains(sets)
        for row, (member, judgement) in enumerate(zip(sets, judged, strict=True)):
            order = [j for j in np.argsort(-probs[row], kind="stable") if member[j]]
            judgement.labels, judgement.abstain = [labels[j] for j in order], bool(abstaining[row])
    limit = trust.unknown_limit if trust is not None else UNKNOWN_FLOOR
    reference = f"; validation texts: at most {trust.unknown_p99:.0%} for 99 in 100" if trust is not None else ""
    for row, judgement in enumerate(judged):
        if shares is not None and shares[row] >= limit:
            judgement.out_of_domain.append(f"{shares[row]:.0%} of its tokens are unknown to the model{reference}")
    if trust is not None and trust.conformal.method == "lac":  # an APS set always holds the top label
        empty = ~trust.conformal.sets(probs, OOD_COVERAGE).any(axis=1)
        for row in np.flatnonzero(empty):
            judged[row].out_of_domain.append(
                "no label is plausible: its most probable label is less probable than the true label of 99 in 100 "
                "validation texts"
            )
    return judged


def trust_of(predictor: Any, coverage: float | None) -> Trust | None:
    """What predict and serve judge texts with: the run's conformal.json (required for --coverage; an ensemble has
    none), or None."""
    run = predictor.run
    if coverage is not None:
        return require_trust(run.path, predictor.labels, predictor.multi_label, coverage)
    return load_trust(run.path, predictor.labels, predictor.multi_label)


def assess(predictor: Any, texts: list[str], trust: Trust | None, coverage: float | None) -> tuple[np.ndarray, list]:
    """Texts' probabilities and their judgements: the prediction set at `coverage` and out-of-domain reasons (the
    unknown-token share needs the run's tokenizer: an ensemble is judged by its conformal data alone)."""
    tokenizer = getattr(predictor.run, "tokenizer", None)
    if tokenizer is None:  # an ensemble: its members' tokenizers differ
        probs, shares = predictor.predict_proba(texts), None
    elif hasattr(predictor, "predict_with_unknown"):  # the linear model: the words it knows are its n-grams
        probs, shares = predictor.predict_with_unknown(texts)
    elif hasattr(predictor, "encoded_logits"):  # the torch predictor: the texts tokenized once for both
        check_texts(texts)
        encoded = predictor.encode(texts)
        probs = probabilities(predictor.encoded_logits(encoded), predictor.multi_label)
        shares = unknown_shares(encoded)
    else:  # the ONNX predictor tokenizes inside: the share from each text's start, at a fraction of the cost of
        # tokenizing it whole again
        probs = predictor.predict_proba(texts)
        shares = unknown_shares(encode(tokenizer, [text[:SHARE_CHARACTERS] for text in texts]))
    return probs, judge(trust, probs, shares, predictor.labels, coverage)
