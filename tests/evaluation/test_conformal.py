"""Conformal prediction sets: the scores, the quantiles, the file, and the sets against crepes and MAPIE as oracles,
with the coverage they promise measured on large exchangeable samples."""

import json
import math
import warnings

import numpy as np
import pytest

from rnnclf.errors import RnnclfError
from rnnclf.evaluation import conformal
from rnnclf.evaluation.conformal import (
    MIN_CLASS_TEXTS,
    Conformal,
    abstains,
    check_coverage,
    coverage_report,
    fit_conformal,
    nonconformity,
)

LABELS = ["a", "b", "c", "d", "e"]
COVERAGES = [0.8, 0.9, 0.95]


def single_label(n: int, seed: int, classes: int = 5, spread: float = 1.5):
    """Softmax rows of random logits, each text's class drawn from its row: calibrated, exchangeable texts."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, spread, size=(n, classes))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, draw_classes(probs, rng)


def dirichlet(n: int, seed: int, classes: int = 5):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(classes, 0.7), size=n)
    return probs, draw_classes(probs, rng)


def draw_classes(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    below = probs.cumsum(axis=1) < rng.random((len(probs), 1))
    return np.minimum(below.sum(axis=1), probs.shape[1] - 1)


def multi_label(n: int, seed: int, labels: int = 5):
    """Sigmoids of random logits, each label drawn from its own probability."""
    rng = np.random.default_rng(seed)
    probs = 1 / (1 + np.exp(-rng.normal(-1, 2, size=(n, labels))))
    return probs, (rng.random((n, labels)) < probs).astype(np.int64)


def loaded(payload: dict, labels: list[str] = LABELS, multi: bool = False) -> Conformal:
    """Through JSON text and back, as a run directory stores it."""
    text = json.dumps(payload, allow_nan=False)
    return Conformal.from_payload(json.loads(text), labels, multi, "conformal.json")


def rounded(values: np.ndarray) -> np.ndarray:
    """The file's 7 significant digits, for oracles fed from probabilities rather than from the file."""
    return np.array([float(f"{value:.7g}") for value in np.ravel(values)]).reshape(np.shape(values))


# --- the scores and the quantiles, by hand


def test_scores_by_hand():
    probs = np.array([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.1, 0.2, 0.7]])
    assert np.allclose(nonconformity(probs, "lac"), 1 - probs)
    aps = [[0.5, 0.8, 1.0], [0.8, 0.8, 1.0], [1.0, 0.9, 0.7]]  # equal probabilities: both in full
    assert np.allclose(nonconformity(probs, "aps"), aps)
    payload = fit_conformal(probs, np.array([1, 0, 1]), ["x", "y", "z"], "aps")
    assert payload["scores"] == {"x": [0.8], "y": [0.8, 0.9], "z": []} and payload["texts"] == 3


def test_a_class_takes_its_own_quantile_from_min_class_texts():
    own = np.arange(1, MIN_CLASS_TEXTS + 1) / 100  # 0.01 .. 0.20: the k-th smallest is k / 100
    few = np.full(MIN_CLASS_TEXTS - 1, 0.9)
    payload = {"method": "lac", "labels": ["x", "y"], "texts": 2 * MIN_CLASS_TEXTS - 1}
    model = loaded({**payload, "scores": {"x": own.tolist(), "y": few.tolist()}}, ["x", "y"])
    assert model.class_conditional(0.95).tolist() == [True, False]
    # x: ceil(21 * 0.95) = 20th of its own 20; y: of its own pool of 19 (never x's), ceil(20 * 0.95) = 19th
    assert model.thresholds(0.95) == pytest.approx([0.20, 0.9])
    assert model.thresholds(0.8) == pytest.approx([0.17, 0.9])  # ceil(21 * 0.8) = 17; y: 16th of its 19
    assert model.thresholds(0.5) == pytest.approx([0.11, 0.9])  # ceil(21 * 0.5) = 11; y: 10th of its 19, not x's
    # 0.96: x would need its 21st of 20 scores, so both take the ceil(40 * 0.96) = 39th of all 39
    assert model.class_conditional(0.96).tolist() == [False, False]
    assert model.thresholds(0.96) == pytest.approx([0.9, 0.9])
    # 0.99: the 40th of 39 scores: none, the full set
    assert np.all(np.isinf(model.thresholds(0.99)))
    assert model.sets(np.array([[0.0, 1.0], [1.0, 0.0]]), 0.99).all()


def test_the_rank_ignores_float_error_at_an_integer():
    scores = (np.arange(1, 300) / 1000).tolist()  # 0.001 .. 0.299: the k-th smallest is k / 1000
    model = loaded({"method": "lac", "labels": ["x"], "texts": 299, "scores": {"x": scores}}, ["x"])
    assert (299 + 1) * 0.81 > 243  # the float product is a hair above 243...
    assert model.thresholds(0.81) == pytest.approx([0.243])  # ...and the 243rd score is still the one taken


def test_a_label_scored_at_the_threshold_is_in_the_set():
    payload = {"method": "lac", "labels": ["x", "y"], "texts": 4, "scores": {"x": [0.25, 0.5, 0.75, 1.0], "y": []}}
    model = loaded(payload, ["x", "y"])
    assert model.thresholds(0.5) == pytest.approx([0.75, 0.75])  # ceil(5 * 0.5) = 3rd of all 4 (too few for x's own)
    sets = model.sets(np.array([[0.25, 0.75], [0.2, 0.8]]), 0.5)  # scores 0.75 (exactly) and 0.8
    assert sets.tolist() == [[True, True], [False, True]]


def test_the_recall_threshold_by_hand():
    # nine texts with one true label each, p = 0.1 .. 0.9; coverage 0.8 allows (n + 1) * 0.2 - 1 = 1 missed text
    # (exactly: the paper's <= keeps it, though 10 * (1 - 0.8) - 1 is 0.9999999999999996 in floating point)
    payload = {
        "method": "recall",
        "labels": ["x", "y"],
        "texts": 9,
        "true_probabilities": [[p / 10] for p in range(1, 10)],
    }
    model = loaded(payload, ["x", "y"], multi=True)
    assert model.thresholds(0.8) == pytest.approx([0.2])  # p >= 0.2 misses only the 0.1 text
    assert model.thresholds(0.95) == pytest.approx([0.0])  # (n + 1) * 0.05 - 1 < 0: no miss allowed even at none
    sets = model.sets(np.array([[0.25, 0.15], [0.2, 0.19]]), 0.8)
    assert sets.tolist() == [[True, False], [True, False]]


# --- crepes and MAPIE as oracles


def crepes_sets(crepes, stored, test_scores, coverage, bins=None, test_bin=None):
    """crepes' non-smoothed sets. crepes keeps a label whose p-value (#{stored >= score} + 1) / (n + 1) is >= 1 -
    confidence; the standard set (and ours, the ceil((n + 1) * coverage)-th score) keeps it when > 1 - confidence.
    They differ only when (n + 1) * coverage is an integer, where crepes takes one score more: the sizes below avoid it.
    """
    oracle = crepes.ConformalClassifier().fit(stored, bins=bins)
    kept = np.full(len(test_scores), test_bin) if bins is not None else None
    return oracle.predict_set(test_scores, bins=kept, confidence=coverage, smoothing=False).astype(bool)


@pytest.mark.parametrize("coverage", COVERAGES)
def test_lac_marginal_sets_are_crepes_sets(coverage, monkeypatch):
    crepes = pytest.importorskip("crepes")
    monkeypatch.setattr(conformal, "MIN_CLASS_TEXTS", 10**9)  # every class takes the marginal quantile
    probs, targets = dirichlet(800, seed=3)
    payload = fit_conformal(probs[:500], targets[:500], LABELS)  # 501 * 0.8, 0.9, 0.95 are not integers
    model = loaded(payload)
    stored = np.concatenate([payload["scores"][label] for label in LABELS])
    ours = model.sets(probs[500:], coverage)
    assert np.array_equal(ours, crepes_sets(crepes, stored, 1 - probs[500:], coverage))
    assert 1 < ours.sum(axis=1).mean() < len(LABELS)  # sets neither trivially single nor full


@pytest.mark.parametrize("coverage", COVERAGES)
def test_lac_class_conditional_sets_are_crepes_mondrian_sets(coverage):
    crepes = pytest.importorskip("crepes")
    probs, targets = dirichlet(3000, seed=4)
    # classes of 150, 123, 87 (their own quantile), 12 and 5 (their pooled 17) validation texts; none of the
    # (n + 1) * coverage is an integer
    keep = np.concatenate(
        [np.flatnonzero(targets[:2000] == c)[:count] for c, count in enumerate([150, 123, 87, 12, 5])]
    )
    test = probs[2000:]
    payload = fit_conformal(probs[keep], targets[keep], LABELS)
    model = loaded(payload)
    assert model.class_conditional(coverage).tolist() == [True, True, True, False, False]
    stored = np.concatenate([payload["scores"][label] for label in LABELS])
    classes = np.repeat(np.arange(5), [len(payload["scores"][label]) for label in LABELS])
    ours = model.sets(test, coverage)
    marginal = crepes_sets(crepes, stored, 1 - test, coverage)
    groups = np.minimum(classes, 3)  # Mondrian groups: each large class, and the two small ones together
    for c in range(5):
        mondrian = crepes_sets(crepes, stored, 1 - test[:, [c]], coverage, bins=groups, test_bin=min(c, 3))[:, 0]
        assert np.array_equal(ours[:, c], mondrian), LABELS[c]
    assert not np.array_equal(ours[:, :3], marginal[:, :3])  # the class-conditional quantiles made a difference
    assert not np.array_equal(ours[:, 3:], marginal[:, 3:])  # and the small classes' own pool


class FixedProbabilities:
    """A fitted scikit-learn classifier whose input is a row index into fixed probabilities."""

    _estimator_type = "classifier"

    def __init__(self, probs: np.ndarray):
        self.probs = probs
        self.classes_ = np.arange(probs.shape[1])

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        return self.probs[np.asarray(X)[:, 0].astype(int)]

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)

    def get_params(self, deep=True):
        return {"probs": self.probs}

    def set_params(self, **params):
        return self

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags()
        )


def mapie_aps_sets(probs: np.ndarray, targets: np.ndarray, calibration: int, coverage: float) -> np.ndarray:
    """MAPIE 1.6's split-conformal APS sets for the texts after the first `calibration` ones.

    MAPIE's "aps" randomises each calibration score (minus u * p_true) however its sets are built, so the score is
    subclassed to its non-randomised form (the true label included in full, rounded like our file); its sets are then
    taken with include_last_label=False: the labels whose cumulated probability is within the quantile, which is our
    rule, and both keep the most probable label where the quantile would leave a set empty.
    """
    pytest.importorskip("sklearn")
    classification = pytest.importorskip("mapie.classification")
    scores = pytest.importorskip("mapie.conformity_scores")

    class NonRandomisedAPS(scores.APSConformityScore):
        def get_conformity_scores(self, y, y_pred, y_enc=None, **kwargs):
            cumulated, self.cutoff = self.get_true_label_cumsum_proba(y, y_pred, self.classes)
            return rounded(cumulated)

    index = np.arange(len(probs))[:, None]
    mapie = classification.SplitConformalClassifier(
        estimator=FixedProbabilities(probs), confidence_level=coverage, conformity_score=NonRandomisedAPS(), prefit=True
    )
    mapie.conformalize(index[:calibration], targets[:calibration])
    _, sets = mapie.predict_set(index[calibration:], conformity_score_params={"include_last_label": False})
    return sets[:, :, 0]


@pytest.mark.parametrize("coverage", COVERAGES)
def test_aps_sets_are_mapie_sets(coverage, monkeypatch):
    monkeypatch.setattr(conformal, "MIN_CLASS_TEXTS", 10**9)  # MAPIE's split conformal takes the marginal quantile
    probs, targets = dirichlet(900, seed=5)
    ours = loaded(fit_conformal(probs[:600], targets[:600], LABELS, "aps")).sets(probs[600:], coverage)
    assert np.array_equal(mapie_aps_sets(probs, targets, 600, coverage), ours)
    assert ours.any(axis=1).all()  # the top class always: never empty
    assert 1 < ours.sum(axis=1).mean() < len(LABELS)


@pytest.mark.parametrize("coverage", COVERAGES)
def test_the_recall_threshold_is_mapie_conformal_risk_control(coverage):
    risk_control = pytest.importorskip("mapie.risk_control")
    probs, targets = multi_label(260, seed=6, labels=3)
    probs = rounded(probs)  # as the file stores them, so both see the same validation probabilities
    # MAPIE refuses texts without a label (ours skips them); 137 texts, because n * FNR moves in steps of 1/6 (1 to 3
    # labels a text) and (n + 1) * (1 - coverage) - 1 is then none of them: at equality MAPIE's strict < refuses a
    # threshold that the paper's <= (ours) keeps
    calibration = np.flatnonzero(targets[:200].any(axis=1))[:137]
    payload = fit_conformal(probs[:200], targets[:200], LABELS[:3], "recall")
    assert payload["texts"] > len(calibration)
    payload = fit_conformal(probs[calibration], targets[calibration], LABELS[:3], "recall")
    model = loaded(payload, LABELS[:3], multi=True)
    # MAPIE keeps p > lambda; lambdas just under each validation probability give ours, p >= it, on its grid
    grid = np.concatenate([[-1.0], np.unique(probs[calibration][targets[calibration] == 1]) - 1e-12])
    controller = risk_control.MultiLabelClassificationController(
        predict_function=lambda rows: probs[np.asarray(rows)[:, 0]],
        risk="recall",
        method="crc",
        target_level=coverage,
        predict_params=grid,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        controller.calibrate(calibration[:, None], targets[calibration])
    oracle = controller.predict(np.arange(200, 260)[:, None])[:, :, 0]
    assert np.array_equal(model.sets(probs[200:], coverage), oracle)
    assert model.thresholds(coverage)[0] == pytest.approx(controller.best_predict_param[0] + 1e-12, abs=1e-9)


# --- the coverage promised, on large exchangeable samples


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_single_label_sets_reach_the_coverage_asked(method):
    probs, targets = single_label(20_000, seed=7)
    model = loaded(fit_conformal(probs[:10_000], targets[:10_000], LABELS, method))
    for coverage in COVERAGES:
        report = coverage_report(model, probs[10_000:], targets[10_000:], coverage)
        sets = model.sets(probs[10_000:], coverage)
        hit = sets[np.arange(10_000), targets[10_000:]]
        assert report["empirical_coverage"] == pytest.approx(hit.mean())
        # APS also keeps each text's top class where its set would be empty: at or a little over the coverage
        above = 0.015 if method == "lac" else 0.04
        assert -0.015 <= hit.mean() - coverage <= above, (coverage, hit.mean())
        for c, label in enumerate(LABELS):  # class-conditional: each class near the coverage too
            share = hit[targets[10_000:] == c].mean()
            assert report["per_class"][label] == {"texts": int(np.sum(targets[10_000:] == c)), "coverage": share}
            assert -0.035 <= share - coverage <= above + 0.02, (label, share)
        assert report["mean_set_size"] == pytest.approx(sets.sum(axis=1).mean()) and report["marginal_labels"] == []


def test_lac_sets_are_smaller_than_aps_sets_at_the_same_coverage():
    # LAC minimises the mean set size of calibrated probabilities (Sadinle et al. 2019); APS pays for adaptivity
    probs, targets = single_label(20_000, seed=8)
    sizes = {}
    for method in ("lac", "aps"):
        model = loaded(fit_conformal(probs[:10_000], targets[:10_000], LABELS, method))
        sizes[method] = coverage_report(model, probs[10_000:], targets[10_000:], 0.9)["mean_set_size"]
    assert sizes["lac"] < sizes["aps"]


def test_multi_label_sets_keep_the_false_negative_rate_asked():
    probs, targets = multi_label(20_000, seed=9)
    model = loaded(fit_conformal(probs[:10_000], targets[:10_000], LABELS, "recall"), multi=True)
    test_probs, test_targets = probs[10_000:], targets[10_000:]
    labelled = test_targets.any(axis=1)
    for coverage in COVERAGES:
        sets = model.sets(test_probs, coverage)
        missed = (test_targets.astype(bool) & ~sets).sum(axis=1)[labelled] / test_targets.sum(axis=1)[labelled]
        assert abs(missed.mean() - (1 - coverage)) <= 0.015, (coverage, missed.mean())
        report = coverage_report(model, test_probs, test_targets, coverage)
        assert report["recall_risk"] == pytest.approx(missed.mean())
        assert report["empirical_coverage"] == pytest.approx(1 - missed.mean())
        assert report["labelled_texts"] == int(labelled.sum()) and report["threshold"] == model.thresholds(coverage)[0]


# --- the file


def test_a_round_trip_through_json_keeps_the_sets():
    probs, targets = single_label(400, seed=10)
    payload = fit_conformal(probs[:300].astype(np.float32), targets[:300], LABELS, "aps")
    for label, scores in payload["scores"].items():
        assert scores == sorted(scores) and scores == [float(f"{s:.7g}") for s in scores], label
    own = nonconformity(probs[:300].astype(np.float32), "aps")[np.arange(300), targets[:300]]
    stored = np.sort(np.concatenate(list(payload["scores"].values())))
    assert np.allclose(stored, np.sort(own), rtol=1e-6, atol=0)
    back = loaded(payload)
    assert (back.method, back.multi_label, back.labels, back.texts) == ("aps", False, LABELS, 300)
    direct = Conformal.from_payload(payload, LABELS, False, "conformal.json")
    for coverage in COVERAGES:
        assert np.array_equal(back.sets(probs[300:], coverage), direct.sets(probs[300:], coverage))


def test_multi_label_payload_keeps_the_true_labels_of_labelled_texts():
    probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.3, 0.2], [0.4, 0.8, 0.05]])
    targets = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 1]])
    payload = fit_conformal(probs, targets, ["x", "y", "z"], "recall")
    assert payload["true_probabilities"] == [[0.6, 0.9], [0.05, 0.8]] and payload["texts"] == 2
    assert loaded(payload, ["x", "y", "z"], multi=True).texts == 2


def damaged_single(payload: dict) -> list:
    """Each a damaged copy of a good single-label payload, with what was damaged."""

    def changed(path: str, value) -> dict:
        copy = json.loads(json.dumps(payload))
        if "." in path:
            outer, inner = path.split(".")
            copy[outer][inner] = value
        else:
            copy[path] = value
        return copy

    first = payload["scores"]["a"]
    return [
        ("not an object", [payload]),
        ("an unknown method", changed("method", "raps")),
        ("the multi-label method", changed("method", "recall")),
        ("other labels", changed("labels", LABELS[::-1])),
        ("a label's scores missing", {**payload, "scores": {k: v for k, v in payload["scores"].items() if k != "b"}}),
        ("scores not a dict", changed("scores", [first])),
        ("a score above 1", changed("scores.a", [1.5, *first[1:]])),
        ("a negative score", changed("scores.a", [-0.1, *first[1:]])),
        ("a NaN score", changed("scores.a", [math.nan, *first[1:]])),
        ("a string score", changed("scores.a", ["0.5", *first[1:]])),
        ("a boolean score", changed("scores.a", [True, *first[1:]])),
        ("a wrong count", changed("texts", payload["texts"] + 1)),
        ("no count", {k: v for k, v in payload.items() if k != "texts"}),
    ]


def good_single() -> dict:
    probs, targets = single_label(60, seed=11)
    return fit_conformal(probs, targets, LABELS, "lac")


@pytest.mark.parametrize("what,payload", damaged_single(good_single()), ids=lambda x: x if isinstance(x, str) else "")
def test_a_damaged_single_label_file_is_refused(what, payload):
    Conformal.from_payload(good_single(), LABELS, False, "run/conformal.json")  # the undamaged one is read
    with pytest.raises(RnnclfError, match=r"^run/conformal\.json: .*damaged$") as error:
        Conformal.from_payload(payload, LABELS, False, "run/conformal.json")
    assert "\n" not in str(error.value)


def good_multi() -> dict:
    probs, targets = multi_label(40, seed=12)
    return fit_conformal(probs, targets, LABELS, "recall")


@pytest.mark.parametrize(
    "what,damage",
    [
        ("a single-label method", lambda p: {**p, "method": "lac"}),
        ("an empty text", lambda p: {**p, "true_probabilities": [[], *p["true_probabilities"][1:]]}),
        ("a probability above 1", lambda p: {**p, "true_probabilities": [[1.01], *p["true_probabilities"][1:]]}),
        ("not lists", lambda p: {**p, "true_probabilities": [0.5] * p["texts"]}),
        ("missing", lambda p: {k: v for k, v in p.items() if k != "true_probabilities"}),
        ("a wrong count", lambda p: {**p, "texts": p["texts"] - 1}),
    ],
)
def test_a_damaged_multi_label_file_is_refused(what, damage):
    Conformal.from_payload(good_multi(), LABELS, True, "conformal.json")
    with pytest.raises(RnnclfError, match="damaged"):
        Conformal.from_payload(damage(good_multi()), LABELS, True, "conformal.json")


def test_an_aps_score_a_hair_above_one_is_read():
    payload = {"method": "aps", "labels": ["x"], "texts": 2, "scores": {"x": [0.5, 1.0000001]}}
    assert loaded(payload, ["x"]).texts == 2
    with pytest.raises(RnnclfError, match="outside"):
        loaded({**payload, "method": "lac"}, ["x"])  # 1 - p never passes 1


def test_fitting_refuses_what_it_cannot_use():
    probs, targets = single_label(20, seed=13)
    with pytest.raises(RnnclfError, match="recall"):
        fit_conformal(*multi_label(20, seed=13), LABELS, "lac")
    with pytest.raises(RnnclfError, match="lac or aps"):
        fit_conformal(probs, targets, LABELS, "recall")
    with pytest.raises(RnnclfError, match="logits"):
        fit_conformal(np.log(probs), targets, LABELS)
    with pytest.raises(RnnclfError, match="shape"):
        fit_conformal(probs[:, :4], targets, LABELS)
    with pytest.raises(RnnclfError, match="targets"):
        fit_conformal(probs, targets[:10], LABELS)
    with pytest.raises(RnnclfError, match="shape"):
        loaded(fit_conformal(probs, targets, LABELS)).sets(probs[:, :3], 0.9)


# --- the coverage option and abstentions


@pytest.mark.parametrize("value", [0, 1, -0.1, 1.5, math.nan])
def test_check_coverage_refuses_what_is_not_a_share(value):
    with pytest.raises(RnnclfError, match=r"^--coverage .*strictly between 0 and 1") as error:
        check_coverage(value)
    assert f"{value:g}" in str(error.value)
    with pytest.raises(RnnclfError, match=r"^predict\.coverage "):
        check_coverage(value, "predict.coverage")


def test_check_coverage_accepts_a_share():
    check_coverage(0.9)
    model = loaded(good_single())
    with pytest.raises(RnnclfError, match="strictly between"):
        model.thresholds(1.0)


def test_abstains_on_empty_and_full_sets():
    sets = np.array([[False, False, False], [True, True, True], [True, False, False], [True, True, False]])
    assert abstains(sets).tolist() == [True, True, False, False]
    report = coverage_report(loaded(good_single()), np.full((2, 5), 0.2), np.array([0, 1]), 0.9)
    assert report["abstain"] == report["empty_sets"] + report["full_sets"]


def test_a_calibration_too_small_gives_full_sets():
    probs, targets = single_label(5, seed=14)
    model = loaded(fit_conformal(probs, targets, LABELS))
    sets = model.sets(single_label(30, seed=15)[0], 0.9)  # ceil(6 * 0.9) = 6 > 5 scores
    assert sets.all() and abstains(sets).all()
    report = coverage_report(model, *single_label(30, seed=15), 0.9)
    assert report["full_sets"] == 1.0 and report["empirical_coverage"] == 1.0 and report["marginal_labels"] == LABELS
