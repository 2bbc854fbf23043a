"""Query strategies: margin and entropy rank as small-text does (the oracle), multi-label formulas by hand, the
chunked shortlist equals one sort of the whole pool, the seeded random draw, diverse_choice equal to a plain
brute-force version and spreading its picks where top-k takes copies, and bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from rnnclf.active import strategies
from rnnclf.active.strategies import STRATEGIES, Shortlist, diverse_choice, random_positions, uncertainty


class FixedClassifier:
    """What small-text's confidence-based strategies ask of a classifier: predict_proba, here fixed."""

    def __init__(self, probabilities: np.ndarray) -> None:
        self.probabilities = probabilities

    def predict_proba(self, _dataset) -> np.ndarray:
        return self.probabilities


def small_text_confidence(strategy_class, probabilities: np.ndarray) -> np.ndarray:
    """small-text's score for every row, lower = queried first (its query takes the n lowest)."""
    rows = np.arange(len(probabilities))
    return strategy_class().score(FixedClassifier(probabilities), None, rows, np.empty(0, int), np.empty(0, int))


def small_text_query(strategy_class, probabilities: np.ndarray, n: int) -> np.ndarray:
    rows = np.arange(len(probabilities))
    return strategy_class().query(FixedClassifier(probabilities), None, rows, np.empty(0, int), np.empty(0, int), n=n)


def dirichlet(seed: int, rows: int = 500, classes: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(classes, 0.5), size=rows)


@pytest.mark.parametrize("name", ["margin", "entropy"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_label_ranks_as_small_text(name, seed):
    query_strategies = pytest.importorskip("small_text.query_strategies")
    oracle = {"margin": query_strategies.BreakingTies, "entropy": query_strategies.PredictionEntropy}[name]
    probabilities = dirichlet(seed)
    ours = uncertainty(probabilities, name)
    theirs = small_text_confidence(oracle, probabilities)
    assert ours.shape == (500,) and ours.dtype == np.float64
    np.testing.assert_array_equal(np.argsort(-ours, kind="stable"), np.argsort(theirs, kind="stable"))
    for k in (1, 5, 20, 100, 499):
        top = np.argsort(-ours, kind="stable")[:k]
        assert set(top) == set(small_text_query(oracle, probabilities, k))
    expected = 1 - theirs if name == "margin" else -theirs  # small-text: the margin as is, minus the entropy
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_diverse_scores_as_margin_and_entropy_by_hand():
    probabilities = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(uncertainty(probabilities, "margin"), [1.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(uncertainty(probabilities, "diverse"), uncertainty(probabilities, "margin"))
    entropy = [np.log(2), 0.0, -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)), np.log(3)]
    np.testing.assert_allclose(uncertainty(probabilities, "entropy"), entropy)
    assert not np.signbit(uncertainty(probabilities, "entropy")).any()  # 0 log 0 = 0, and no -0.0


def test_multi_label_formulas_by_hand():
    probabilities = np.array(
        [[0.5, 0.99, 0.01], [0.99, 0.01, 0.99], [0.01, 0.01, 0.01], [0.3, 0.9, 0.0], [1.0, 0.0, 1.0]]
    )
    margin = uncertainty(probabilities, "margin", multi_label=True)
    by_hand = [1 - min(abs(2 * p - 1) for p in row) for row in probabilities]
    np.testing.assert_allclose(margin, by_hand)
    np.testing.assert_allclose(margin, [1.0, 0.02, 0.02, 0.6, 0.0])
    assert np.argmax(margin) == 0 and margin.min() == 0.0
    np.testing.assert_array_equal(uncertainty(probabilities, "diverse", multi_label=True), margin)

    def binary_entropy(p: float) -> float:
        return -sum(q * np.log(q) for q in (p, 1 - p) if q > 0)

    entropy = uncertainty(probabilities, "entropy", multi_label=True)
    np.testing.assert_allclose(entropy, [sum(binary_entropy(p) for p in row) for row in probabilities])
    assert np.argmax(entropy) == 3 and np.argmin(entropy) == 4 and entropy[4] == 0.0  # two doubtful labels add up
    np.testing.assert_allclose(entropy[1], entropy[2])  # 0.99 and 0.01 are equally sure


def test_one_label_multi_label_and_float32_rounding_are_fine():
    single = np.array([[0.5], [1.0000001], [0.0]], dtype=np.float32)
    margin = uncertainty(single, "margin", multi_label=True)
    np.testing.assert_allclose(margin, [1.0, 0.0, 0.0])
    assert np.isfinite(uncertainty(single, "entropy", multi_label=True)).all()


@pytest.mark.parametrize(
    "probabilities, multi_label, message",
    [
        (np.array([0.5, 0.5]), False, "shape"),
        (np.array([[1.0], [1.0]]), False, "two or more classes"),
        (np.empty((3, 0)), True, "one or more labels"),
        (np.array([[2.0, -1.0]]), False, "logits"),
        (np.array([[np.nan, 0.5]]), True, "finite"),
    ],
)
def test_bad_probabilities_are_refused(probabilities, multi_label, message):
    with pytest.raises(ValueError, match=message):
        uncertainty(probabilities, "margin", multi_label)


def test_unknown_and_random_strategies_are_refused():
    probabilities = dirichlet(0, rows=4)
    with pytest.raises(ValueError, match="not one of margin, entropy, diverse, random"):
        uncertainty(probabilities, "least_confidence")
    with pytest.raises(ValueError, match="random_positions"):
        uncertainty(probabilities, "random")
    assert STRATEGIES == ("margin", "entropy", "diverse", "random")


def chunks(rng: np.random.Generator, total: int) -> list[slice]:
    """Uneven consecutive pieces of range(total), some empty."""
    cuts = np.sort(rng.integers(0, total + 1, size=12))
    edges = [0, *cuts.tolist(), total]
    return [slice(start, stop) for start, stop in zip(edges[:-1], edges[1:], strict=True)]


@pytest.mark.parametrize("size", [0, 1, 7, 50, 400, 1000])
@pytest.mark.parametrize("shuffled", [False, True])
def test_shortlist_over_chunks_equals_one_sort_of_the_pool(size, shuffled):
    rng = np.random.default_rng(size)
    total = 400
    scores = rng.integers(0, 10, total).astype(np.float64)  # many ties
    positions = rng.permutation(total) if shuffled else np.arange(total)
    vectors = rng.normal(size=(total, 5)).astype(np.float32)
    shortlist = Shortlist(size)
    for piece in chunks(rng, total):
        shortlist.add(scores[piece], positions[piece], vectors[piece])
    expected = np.lexsort((positions, -scores))[:size]
    assert len(shortlist) == min(size, total)
    np.testing.assert_array_equal(shortlist.scores, scores[expected])
    np.testing.assert_array_equal(shortlist.positions, positions[expected])
    assert shortlist.positions.dtype == np.int64 and shortlist.vectors.dtype == np.float32
    np.testing.assert_array_equal(shortlist.vectors, vectors[expected])


def test_shortlist_without_vectors_and_before_any_chunk():
    shortlist = Shortlist(3)
    assert len(shortlist) == 0 and shortlist.vectors is None and shortlist.positions.dtype == np.int64
    shortlist.add(np.array([0.2, 0.9, 0.2]), np.array([10, 11, 12]))
    shortlist.add(np.array([0.2, 0.95]), np.array([5, 13]))
    assert shortlist.vectors is None
    np.testing.assert_array_equal(shortlist.positions, [13, 11, 5])
    np.testing.assert_array_equal(shortlist.scores, [0.95, 0.9, 0.2])


def test_shortlist_refuses_bad_chunks():
    with pytest.raises(ValueError, match="0 or more"):
        Shortlist(-1)
    shortlist = Shortlist(2)
    with pytest.raises(ValueError, match="positions"):
        shortlist.add(np.zeros(3), np.arange(2))
    with pytest.raises(ValueError, match="NaN"):
        shortlist.add(np.array([np.nan]), np.arange(1))
    with pytest.raises(ValueError, match="one row per score"):
        shortlist.add(np.zeros(3), np.arange(3), np.zeros((2, 4)))
    shortlist.add(np.zeros(3), np.arange(3), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="every chunk or with none"):
        shortlist.add(np.zeros(1), np.arange(3, 4))
    with pytest.raises(ValueError, match="width"):
        shortlist.add(np.zeros(1), np.arange(3, 4), np.zeros((1, 5)))
    plain = Shortlist(2)
    plain.add(np.zeros(1), np.arange(1))
    with pytest.raises(ValueError, match="every chunk or with none"):
        plain.add(np.zeros(1), np.arange(1, 2), np.zeros((1, 4)))


def test_random_positions_are_distinct_sorted_reproducible_and_skip_the_excluded():
    exclude = np.zeros(100, dtype=bool)
    exclude[::3] = True
    drawn = random_positions(100, 30, seed=7, exclude=exclude)
    assert drawn.dtype == np.int64 and len(drawn) == 30 and len(set(drawn.tolist())) == 30
    assert np.all(np.diff(drawn) > 0) and not exclude[drawn].any() and drawn.min() >= 0 and drawn.max() < 100
    np.testing.assert_array_equal(drawn, random_positions(100, 30, seed=7, exclude=exclude))
    assert not np.array_equal(drawn, random_positions(100, 30, seed=8, exclude=exclude))
    np.testing.assert_array_equal(random_positions(66, 66, seed=1, exclude=None), np.arange(66))
    np.testing.assert_array_equal(random_positions(100, 66, seed=1, exclude=exclude), np.flatnonzero(~exclude))
    assert len(random_positions(0, 0, seed=1)) == 0


def test_random_positions_refuses_too_few_and_bad_masks():
    exclude = np.ones(10, dtype=bool)
    exclude[:4] = False
    with pytest.raises(ValueError, match="only 4"):
        random_positions(10, 5, seed=0, exclude=exclude)
    with pytest.raises(ValueError, match="only 10"):
        random_positions(10, 11, seed=0)
    with pytest.raises(ValueError, match="boolean mask"):
        random_positions(10, 1, seed=0, exclude=np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="boolean mask"):
        random_positions(10, 1, seed=0, exclude=np.zeros(9, dtype=bool))
    with pytest.raises(ValueError, match="0 or more"):
        random_positions(10, -1, seed=0)


def unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows, dtype=np.float64), where=norms > 0)


def brute_force_choice(scores, vectors, k, anchors=None, alpha=None) -> list[int]:
    """diverse_choice written plainly: whole similarity matrices, every candidate tried at every step."""
    count = len(scores)
    anchors = np.empty((0, vectors.shape[1])) if anchors is None else anchors
    alpha = count / (count + len(anchors)) if alpha is None else alpha
    scaled = scores / scores.max() if scores.max() > 0 else np.zeros(count)
    among, to_anchors = unit(vectors) @ unit(vectors).T, unit(vectors) @ unit(anchors).T
    picks: list[int] = []
    for _ in range(k):
        best, best_value = -1, -np.inf
        for candidate in range(count):
            if candidate in picks:
                continue
            similar = [*to_anchors[candidate], *(among[candidate, pick] for pick in picks)]
            if similar:
                value = alpha * (1 - max(similar)) + (1 - alpha) * scaled[candidate]
            else:  # nothing yet to be similar to: the most uncertain first
                value = scaled[candidate]
            if value > best_value:
                best, best_value = candidate, value
        picks.append(best)
    return picks


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("anchor_rows", [0, 1, 30])
@pytest.mark.parametrize("alpha", [None, 0.0, 0.3, 0.8, 1.0])
def test_diverse_choice_equals_brute_force(seed, anchor_rows, alpha):
    rng = np.random.default_rng(seed)
    scores, vectors = rng.random(40), rng.normal(size=(40, 6))
    vectors[3] = 0.0  # a zero vector: similar to nothing
    anchors = rng.normal(size=(anchor_rows, 6)) if anchor_rows else None
    for k in (0, 1, 5, 40):
        picks = diverse_choice(scores, vectors, k, anchors, alpha)
        assert picks.dtype == np.int64
        assert picks.tolist() == brute_force_choice(scores, vectors, k, anchors, alpha)


def test_diverse_choice_compares_anchors_block_by_block(monkeypatch):
    rng = np.random.default_rng(5)
    scores, vectors, anchors = rng.random(30), rng.normal(size=(30, 4)), rng.normal(size=(100, 4)).astype(np.float32)
    expected = brute_force_choice(scores, vectors, 10, anchors.astype(np.float64), 0.5)
    assert diverse_choice(scores, vectors, 10, anchors, 0.5).tolist() == expected
    monkeypatch.setattr(strategies, "_BLOCK_CELLS", 30 * 7)  # blocks of 7 anchors, the last one short
    assert diverse_choice(scores, vectors, 10, anchors, 0.5).tolist() == expected


def test_ties_go_to_the_lowest_index_and_zero_scores_stay_zero():
    vectors = np.eye(4)
    assert diverse_choice(np.zeros(4), vectors, 4).tolist() == [0, 1, 2, 3]
    assert diverse_choice(np.array([0.1, 0.5, 0.5, 0.2]), vectors, 2, alpha=0.0).tolist() == [1, 2]


def copies_pool(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """200 rows of 3-class probabilities and 16-wide vectors: rows 40, 80, ..., 200 are one text five times over,
    the most uncertain of all (margin 0.01); the rest spread out (random directions, margins 0.2 or more)."""
    rng = np.random.default_rng(seed)
    top = rng.uniform(0.6, 0.95, 200)
    second = (1 - top) * rng.uniform(0.5, 1.0, 200)
    probabilities = np.stack([top, second, 1 - top - second], axis=1)
    vectors = rng.normal(size=(200, 16))
    copies = np.arange(39, 200, 40)
    probabilities[copies] = [0.45, 0.44, 0.11]
    vectors[copies] = rng.normal(size=16)
    return probabilities, vectors


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_diverse_choice_takes_one_of_the_copies_where_top_k_takes_all(alpha):
    probabilities, vectors = copies_pool()
    copies = set(range(39, 200, 40))
    scores = uncertainty(probabilities, "margin")
    shortlist = Shortlist(5)
    shortlist.add(scores, np.arange(200))
    assert set(shortlist.positions.tolist()) == copies  # plain top-5: the same text five times
    picks = diverse_choice(scores, vectors, 5, alpha=alpha)
    assert len(copies & set(picks.tolist())) == 1 and picks[0] == 39  # the most uncertain still goes first


def test_an_anchor_like_an_uncertain_candidate_pushes_it_out():
    rng = np.random.default_rng(3)
    scores, vectors = rng.uniform(0.3, 0.6, 50), rng.normal(size=(50, 16))
    scores[17] = 1.0
    assert 17 in diverse_choice(scores, vectors, 5, alpha=0.5)
    anchors = np.vstack([rng.normal(size=(3, 16)), vectors[17] + rng.normal(scale=1e-3, size=16)])
    for alpha in (None, 0.5):
        assert 17 not in diverse_choice(scores, vectors, 5, anchors, alpha)
    assert 17 in diverse_choice(scores, vectors, 5, anchors, alpha=0.0)  # uncertainty alone ignores the anchors


@pytest.mark.parametrize(
    "change, message",
    [
        ({"k": 11}, "cannot pick 11 of 10"),
        ({"k": -1}, "cannot pick -1"),
        ({"scores": -np.ones(10)}, "0 or more"),
        ({"scores": np.full(10, np.inf)}, "finite"),
        ({"scores": np.ones(9)}, r"\(M,\) and \(M, d\)"),
        ({"vectors": np.full((10, 3), np.nan)}, "vectors must be finite"),
        ({"anchors": np.ones((4, 2))}, "as wide as the vectors"),
        ({"anchors": np.full((4, 3), np.nan)}, "anchors must be finite"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_diverse_choice_refuses_bad_input(change, message):
    arguments = {"scores": np.ones(10), "vectors": np.ones((10, 3)), "k": 3, "anchors": None, "alpha": None}
    with pytest.raises(ValueError, match=message):
        diverse_choice(**{**arguments, **change})


def test_multi_label_margin_measures_from_each_labels_threshold():
    """A rare label decided at 0.2: p = 0.2 sits on its decision (most uncertain), p = 0.5 is a confident yes."""
    probabilities = np.array([[0.2, 0.9], [0.5, 0.9], [0.02, 0.9]])
    at_half = uncertainty(probabilities, "margin", multi_label=True)
    at_own = uncertainty(probabilities, "margin", multi_label=True, thresholds=np.array([0.2, 0.5]))
    assert np.argmax(at_half) == 1 and np.argmax(at_own) == 0
    np.testing.assert_allclose(at_own, [1.0, 1 - 0.375, 1 - 0.8])  # row 3: the second label (0.9 of 0.5) decides
