"""Query strategies for active learning, in plain numpy: how unsure the model is of each unlabelled text
(uncertainty), the most unsure rows kept while a large pool is read in chunks (Shortlist), a seeded random draw to
compare against (random_positions), and a batch that is unsure but not redundant (diverse_choice).

Uncertainty sampling labels first the texts the model is least sure of, where a label teaches it the most:
"margin" is breaking ties (Luo et al. 2005; small-text's BreakingTies), a small gap between the two most probable
classes; "entropy" is the entropy of the predicted distribution (small-text's PredictionEntropy). The tests check
both rank rows as small-text does. Multi-label outputs are independent sigmoids, so each label is a yes/no question.

Top-k by uncertainty alone often picks near-copies: five rewordings of one confusing text cost five labels and teach
about one. "diverse" keeps a shortlist of the most unsure rows, then picks from it one at a time, trading uncertainty
against similarity to what is already labelled (the anchors) and already picked: ranked batch-mode active learning
(Cardoso et al. 2017), as modAL's uncertainty_batch_sampling, with cosine similarity on the model's text vectors.
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("margin", "entropy", "diverse", "random")
_SLACK = 1e-4  # probabilities may stray this far outside [0, 1] by float rounding; further means logits, say
_ANCHOR_BLOCK = 4096  # anchors compared at once, at most
_BLOCK_CELLS = 1 << 22  # and at most this many similarities at once (32 MB of float64)


def uncertainty(
    probabilities: np.ndarray, strategy: str, multi_label: bool = False, thresholds: np.ndarray | None = None
) -> np.ndarray:
    """(N,) float64, higher = more worth labelling.

    Single-label (probabilities (N, C), rows summing to 1): margin and diverse 1 - (p_top1 - p_top2); entropy
    -sum p log p (natural log, 0 log 0 = 0). Multi-label (probabilities (N, L), one sigmoid per label): margin and
    diverse 1 - min_l d_l, d_l the distance of p_l from label l's threshold (`thresholds`, else 0.5) as a share of
    the room on its side (|2 p_l - 1| at 0.5): the label closest to its decision decides; entropy the sum of the binary
    entropies. Raises ValueError for "random" (it draws rows, it does not score them), an unknown strategy, or
    probabilities of the wrong shape, not finite, or outside [0, 1]."""
    if strategy == "random":
        raise ValueError("the random strategy does not score rows: draw them with random_positions")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    probabilities = _checked_probabilities(probabilities, multi_label)
    if multi_label:
        if strategy == "entropy":
            return (_surprise(probabilities) + _surprise(1.0 - probabilities)).sum(axis=1)
        return 1.0 - _distance_from(probabilities, thresholds).min(axis=1)
    if strategy == "entropy":
        return _surprise(probabilities).sum(axis=1)
    top_two = np.partition(probabilities, -2, axis=1)[:, -2:]  # [:, -1] the largest, [:, -2] the next
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def _distance_from(probabilities: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """How far each label's probability is from its decision threshold (0.5 when none), as a share of the room on
    its side: 0 on the threshold, 1 at 0 or 1. With 0.5 it is |2 p - 1|."""
    t = (
        np.full(probabilities.shape[1], 0.5)
        if thresholds is None
        else np.clip(np.asarray(thresholds, float), 1e-6, 1 - 1e-6)
    )
    above = probabilities >= t
    return np.where(above, (probabilities - t) / (1 - t), (t - probabilities) / t)


def _checked_probabilities(probabilities: np.ndarray, multi_label: bool) -> np.ndarray:
    """float64 (N, C) clipped into [0, 1], or ValueError saying what is wrong."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    fewest = 1 if multi_label else 2
    if probabilities.ndim != 2 or probabilities.shape[1] < fewest:
        kind = "(N, labels) with one or more labels" if multi_label else "(N, classes) with two or more classes"
        raise ValueError(f"probabilities must be {kind}, got shape {probabilities.shape}")
    if not np.all((probabilities >= -_SLACK) & (probabilities <= 1.0 + _SLACK)):  # NaN fails too
        raise ValueError("probabilities must be finite and in [0, 1] (logits given, perhaps?)")
    return np.clip(probabilities, 0.0, 1.0)


def _surprise(p: np.ndarray) -> np.ndarray:
    """-p log p elementwise, 0 where p is 0 (its limit)."""
    return -(p * np.log(np.where(p > 0, p, 1.0))) + 0.0  # + 0.0 turns -0.0 into 0.0


class Shortlist:
    """The `size` highest scores of a pool read in chunks, with their positions (int64 pool row numbers) and, when
    given, their vectors (float32 rows). Ties: the lower position first. Memory: `size` rows plus one chunk.

    .scores, .positions and .vectors (None if never given) are ordered by descending score, then ascending
    position; len(shortlist) is how many are kept (size, or fewer while the pool seen is smaller)."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"a shortlist size must be 0 or more, got {size}")
        self.size = size
        self._scores = np.empty(0, dtype=np.float64)
        self._positions = np.empty(0, dtype=np.int64)
        self._vectors: np.ndarray | None = None
        self._added = False

    @property
    def scores(self) -> np.ndarray:
        return self._scores

    @property
    def positions(self) -> np.ndarray:
        return self._positions

    @property
    def vectors(self) -> np.ndarray | None:
        return self._vectors

    def __len__(self) -> int:
        return len(self._scores)

    def add(self, scores: np.ndarray, positions: np.ndarray, vectors: np.ndarray | None = None) -> None:
        """Takes one chunk: scores (n,), positions (n,) and, with every chunk or with none, vectors (n, d). Raises
        ValueError on lengths that disagree, NaN scores, or vectors given with some chunks only."""
        scores, positions, vectors = self._checked(scores, positions, vectors)
        keep = _top(scores, positions, self.size)  # the chunk's own top first: only that much is copied
        scores = np.concatenate([self._scores, scores[keep]])
        positions = np.concatenate([self._positions, positions[keep]])
        keep_all = _top(scores, positions, self.size)
        self._scores, self._positions = scores[keep_all], positions[keep_all]
        if vectors is not None:
            earlier = self._vectors if self._vectors is not None else np.empty((0, vectors.shape[1]), np.float32)
            self._vectors = np.concatenate([earlier, vectors[keep]])[keep_all]
        self._added = True

    def _checked(
        self, scores: np.ndarray, positions: np.ndarray, vectors: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        scores = np.asarray(scores, dtype=np.float64)
        positions = np.asarray(positions, dtype=np.int64)
        if scores.ndim != 1 or positions.shape != scores.shape:
            raise ValueError(f"scores {scores.shape} and positions {positions.shape} must be (n,) and (n,)")
        if np.isnan(scores).any():
            raise ValueError("scores must not be NaN")
        if self._added and (vectors is None) != (self._vectors is None):
            raise ValueError("give vectors with every chunk or with none")
        if vectors is None:
            return scores, positions, None
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(scores):
            raise ValueError(f"vectors {vectors.shape} must be one row per score ({len(scores)})")
        if self._vectors is not None and vectors.shape[1] != self._vectors.shape[1]:
            raise ValueError(f"vectors of width {vectors.shape[1]} after width {self._vectors.shape[1]}")
        return scores, positions, vectors


def _top(scores: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """Indices of the `size` highest scores, highest first, the lower position first among equal scores."""
    return np.lexsort((positions, -scores))[:size]


def random_positions(pool_size: int, k: int, seed: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """k distinct positions in range(pool_size), none where `exclude` (a boolean mask of length pool_size) is True,
    drawn with np.random.default_rng(seed), sorted ascending (int64). Raises ValueError if fewer than k are left."""
    if pool_size < 0 or k < 0:
        raise ValueError(f"pool size and k must be 0 or more, got {pool_size} and {k}")
    if exclude is None:
        available = np.arange(pool_size, dtype=np.int64)
    else:
        exclude = np.asarray(exclude)
        if exclude.dtype != np.bool_ or exclude.shape != (pool_size,):
            raise ValueError(
                f"exclude must be a boolean mask of shape ({pool_size},), got {exclude.dtype} {exclude.shape}"
            )
        available = np.flatnonzero(~exclude).astype(np.int64)
    if len(available) < k:
        raise ValueError(f"{k} rows asked for, but only {len(available)} of the pool's {pool_size} are available")
    return np.sort(np.random.default_rng(seed).choice(available, size=k, replace=False))


def diverse_choice(
    scores: np.ndarray,
    vectors: np.ndarray,
    k: int,
    anchors: np.ndarray | None = None,
    alpha: float | None = None,
) -> np.ndarray:
    """The k candidates (of M) to label, as indices into the candidates in pick order: ranked batch-mode selection.

    Each pick maximises alpha * (1 - s) + (1 - alpha) * u, where u is the score over the largest score (all zero
    stays zero) and s the largest cosine similarity to the anchors (rows already labelled) and the candidates
    already picked; zero vectors are similar to nothing (0). With no anchors the first pick is the most uncertain
    candidate (there is nothing yet to be similar to). alpha by default M / (M + A), A anchor rows, as modAL weighs
    unlabelled against labelled counts: many labelled rows favour uncertainty, few favour spread. Ties: the lowest
    index. Time O(k M d); memory: a running (M,) similarity, anchors compared in blocks. Raises ValueError if k > M,
    on negative or non-finite scores, on shapes that disagree, or on alpha outside [0, 1]."""
    scores, units = _checked_candidates(scores, vectors, k)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    similarity = _anchor_similarity(units, anchors)  # None: nothing labelled to be similar to
    anchor_rows = 0 if similarity is None else len(anchors)
    alpha = _checked_alpha(alpha, len(scores), anchor_rows)
    top = scores.max()
    scaled = scores / top if top > 0 else np.zeros_like(scores)
    picked = np.zeros(len(scores), dtype=bool)
    picks = np.empty(k, dtype=np.int64)
    for step in range(k):
        value = scaled.copy() if similarity is None else alpha * (1.0 - similarity) + (1.0 - alpha) * scaled
        value[picked] = -np.inf
        pick = int(np.argmax(value))  # the first of equal maxima: the lowest index
        picks[step], picked[pick] = pick, True
        fresh = units @ units[pick]
        similarity = fresh if similarity is None else np.maximum(similarity, fresh)
    return picks


def _checked_candidates(scores: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """scores as float64 and vectors as float64 unit rows, or ValueError saying what is wrong."""
    scores = np.asarray(scores, dtype=np.float64)
    vectors = np.asarray(vectors, dtype=np.float64)
    if scores.ndim != 1 or vectors.ndim != 2 or len(vectors) != len(scores):
        raise ValueError(f"scores {scores.shape} and vectors {vectors.shape} must be (M,) and (M, d)")
    if k < 0 or k > len(scores):
        raise ValueError(f"cannot pick {k} of {len(scores)} candidates")
    if not np.all(np.isfinite(scores) & (scores >= 0)):
        raise ValueError("scores must be finite and 0 or more")
    if not np.isfinite(vectors).all():
        raise ValueError("vectors must be finite")
    return scores, _unit_rows(vectors)


def _checked_alpha(alpha: float | None, candidates: int, anchors: int) -> float:
    if alpha is None:
        return candidates / (candidates + anchors)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return float(alpha)


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    """float64 rows scaled to length 1; zero rows stay zero."""
    rows = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def _anchor_similarity(units: np.ndarray, anchors: np.ndarray | None) -> np.ndarray | None:
    """(M,) each candidate's largest cosine similarity to any anchor, or None without anchors. The anchors are taken
    a block of rows at a time, so a large labelled set never builds the whole (M, A) matrix."""
    if anchors is None or len(anchors) == 0:
        return None
    if np.ndim(anchors) != 2 or np.shape(anchors)[1] != units.shape[1]:
        raise ValueError(f"anchors {np.shape(anchors)} must be (A, {units.shape[1]}), as wide as the vectors")
    block = max(1, min(_ANCHOR_BLOCK, _BLOCK_CELLS // len(units)))
    best = np.full(len(units), -np.inf)
    for start in range(0, len(anchors), block):
        rows = np.asarray(anchors[start : start + block], dtype=np.float64)
        if not np.isfinite(rows).all():
            raise ValueError("anchors must be finite")
        np.maximum(best, (units @ _unit_rows(rows).T).max(axis=1), out=best)
    return best
