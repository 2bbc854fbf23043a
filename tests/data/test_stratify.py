import numpy as np
import pytest

from rnnclf.data.stratify import _held_count, iterative_stratified_split
from rnnclf.errors import RnnclfError


def skewed_label_sets(seed: int, texts: int = 2000, num_labels: int = 20) -> list[tuple[int, ...]]:
    """Label frequencies from a few very common to rare, 0 to several labels a text, about a fifth with none."""
    rng = np.random.default_rng(seed)
    frequencies = rng.dirichlet(np.full(num_labels, 0.5))
    sizes = rng.poisson(1.5, texts).clip(0, num_labels)
    return [tuple(int(label) for label in rng.choice(num_labels, size, replace=False, p=frequencies)) for size in sizes]


def indicator(label_sets: list[tuple[int, ...]], num_labels: int) -> np.ndarray:
    matrix = np.zeros((len(label_sets), num_labels), dtype=bool)
    for row, labels in enumerate(label_sets):
        matrix[row, list(labels)] = True
    return matrix


def test_same_seed_same_split_other_seed_other_split():
    label_sets = skewed_label_sets(0, texts=500)
    first = iterative_stratified_split(label_sets, 20, 0.2, seed=1)
    assert first.dtype == bool and first.shape == (500,)
    assert np.array_equal(first, iterative_stratified_split(label_sets, 20, 0.2, seed=1))
    others = [iterative_stratified_split(label_sets, 20, 0.2, seed=seed) for seed in range(2, 6)]
    assert all((other != first).sum() > 50 for other in others)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
@pytest.mark.parametrize("seed", range(3))
def test_each_label_is_held_out_in_proportion_far_closer_than_a_random_split(seed, fraction):
    label_sets = skewed_label_sets(seed)
    matrix = indicator(label_sets, 20)
    counts = matrix.sum(axis=0)
    held = iterative_stratified_split(label_sets, 20, fraction, seed)
    assert held.sum() == round(fraction * len(label_sets))
    stratified = matrix[held].sum(axis=0)
    # measured: every label within one example of its share, mean deviation 0.2-0.3 examples
    assert np.all(np.abs(stratified - np.round(fraction * counts)) <= 1)
    rng = np.random.default_rng(seed)
    random_deviation = np.mean(
        [
            np.abs(matrix[rng.permutation(len(held)) < held.sum()].sum(axis=0) - fraction * counts).mean()
            for _ in range(5)
        ]
    )
    stratified_deviation = np.abs(stratified - fraction * counts).mean()
    # measured: random splits deviate 2.4-4.6 examples a label on average, ten times more
    assert stratified_deviation < random_deviation / 4


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_label_with_two_examples_keeps_one_for_training(fraction):
    # labels 0-29 have exactly two examples each, sometimes sharing a text with a common label 30
    label_sets = [(label, 30) if label % 3 == 0 else (label,) for label in range(30) for _ in range(2)]
    label_sets += [(30,)] * 10 + [()] * 5
    held = iterative_stratified_split(label_sets, 31, fraction, seed=0)
    matrix = indicator(label_sets, 31)
    assert matrix[~held].sum(axis=0).min() >= 1
    assert held.any() and not held.all()


def test_texts_without_labels_are_split_too():
    label_sets = [()] * 400 + [(0,)] * 100 + [(0, 1)] * 100
    held = iterative_stratified_split(label_sets, 2, 0.25, seed=3)
    assert held.sum() == 150
    assert 80 <= held[:400].sum() <= 120
    only_empty = iterative_stratified_split([()] * 100, 3, 0.3, seed=0)
    assert only_empty.sum() == 30


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
@pytest.mark.parametrize("label_sets", [[(), ()], [(0,), (0,)], [(0,), (1,)], [(0, 1), ()], [(0,), (0,), (0,)]])
def test_both_parts_are_never_empty(label_sets, fraction):
    held = iterative_stratified_split(label_sets, 2, fraction, seed=0)
    assert held.any() and not held.all()


def test_tiny_inputs():
    assert iterative_stratified_split([], 3, 0.2, seed=0).shape == (0,)
    assert iterative_stratified_split([(1,)], 3, 0.2, seed=0).tolist() == [False]


def test_duplicate_labels_in_a_text_count_once():
    label_sets = [(0, 0, 0)] * 10 + [(1,)] * 10
    held = iterative_stratified_split(label_sets, 2, 0.5, seed=0)
    assert held[:10].sum() == 5 and held[10:].sum() == 5


@pytest.mark.parametrize(("label_sets", "fraction"), [([(0,), (3,)], 0.5), ([(0,), (-1,)], 0.5), ([(0,)], 0.0)])
def test_bad_input_is_a_user_error(label_sets, fraction):
    with pytest.raises(RnnclfError):
        iterative_stratified_split(label_sets, 3, fraction, seed=0)


def greedy(count, want_held, want_train, room_held, room_train):
    """Sechidis et al.'s assignment one example at a time; None where a coin would decide."""
    held = 0
    for _ in range(count):
        key_held, key_train = (want_held, room_held), (want_train, room_train)
        if key_held == key_train:
            return None
        to_held = key_held > key_train
        held += to_held
        want_held, room_held = want_held - to_held, room_held - to_held
        want_train, room_train = want_train - (not to_held), room_train - (not to_held)
    return held


def test_closed_form_count_matches_one_at_a_time_assignment():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(5000):
        count = int(rng.integers(0, 12))
        want_held = float(rng.integers(-3, 8) + rng.choice([0.0, rng.random()]))
        want_train = float(rng.choice([want_held, rng.integers(-3, 8) + rng.choice([0.0, rng.random()])]))
        room_held, room_train = float(rng.integers(0, 10)), float(rng.integers(0, 10))
        expected = greedy(count, want_held, want_train, room_held, room_train)
        if expected is not None:
            checked += 1
            assert _held_count(count, want_held, want_train, room_held, room_train, rng) == expected
    assert checked > 3000


def test_as_close_as_the_iterstrat_package():
    iterstrat = pytest.importorskip("iterstrat.ml_stratifiers")
    label_sets = skewed_label_sets(0)
    matrix = indicator(label_sets, 20)
    splitter = iterstrat.MultilabelStratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=0)
    _, their_rows = next(splitter.split(np.zeros((len(matrix), 1)), matrix.astype(int)))
    held = iterative_stratified_split(label_sets, 20, 0.2, seed=0)
    counts = matrix.sum(axis=0)
    ours = np.abs(matrix[held].sum(axis=0) - 0.2 * counts).mean()
    theirs = np.abs(matrix[their_rows].sum(axis=0) - 0.2 * counts).mean()
    assert ours <= theirs + 0.5
