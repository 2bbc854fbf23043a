"""rnnclf ensemble in-process: the mean of the members' calibrated probabilities, fitted only on texts no member
trained on, and every member checked (task, labels, finished, unchanged)."""

import json
import shutil

import numpy as np
import pytest

from rnnclf.data.corpus import label_targets
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.scores import probabilities
from rnnclf.inference.ensemble import EnsemblePredictor, load_ensemble, mean_logits
from rnnclf.inference.evaluate import labelled_split
from rnnclf.inference.predictor import Predictor
from rnnclf.recipes.ensemble import make_ensemble

from helpers.data import multi_label_task, write_jsonl
from helpers.runs import MULTI_LABEL_CONFIG, train_run

TEXTS = ["the movie was not good", "good not the plot", "a bad film and not", "really not bad"]


def quiet(line: str) -> None:
    pass


def test_mean_logits_give_the_members_mean_probabilities():
    rng = np.random.default_rng(0)
    members = [rng.normal(size=(6, 4)).astype(np.float32) * 3 for _ in range(3)]
    for multi_label in (False, True):
        mean = np.mean([probabilities(m, multi_label) for m in members], axis=0)
        np.testing.assert_allclose(probabilities(mean_logits(members, multi_label), multi_label), mean, atol=1e-6)


def test_ensemble_answers_the_mean_of_its_members(ensemble_workspace, tmp_path):
    members = [ensemble_workspace / "m0", ensemble_workspace / "m1"]
    summary = make_ensemble(members, tmp_path / "ens", quiet, "cpu")
    record = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert record["shared_valid"] and [m["path"] for m in record["members"]] == [str(p) for p in members]
    assert (tmp_path / "ens" / "calibration.json").exists()  # fitted on the shared validation split
    ensemble = EnsemblePredictor.load(tmp_path / "ens", "cpu")
    singles = [Predictor.load(path, "cpu") for path in members]
    expected = np.mean([p.predict_proba(TEXTS) for p in singles], axis=0)
    temperature = float(ensemble.temperature[0])
    calibrated = probabilities(np.log(expected) / temperature, False)
    np.testing.assert_allclose(ensemble.predict_proba(TEXTS), calibrated, atol=1e-5)
    # its test figures are those of the mean, scored here from the members themselves
    labelled, _ = labelled_split(ensemble.run, None, "test")
    targets = label_targets(labelled.labels, ensemble.labels, False)
    mean = np.mean([p.predict_proba(list(labelled.texts)) for p in singles], axis=0)
    assert summary["test"]["accuracy"] == pytest.approx(float(np.mean(mean.argmax(axis=1) == targets)))
    assert [m["path"] for m in summary["member_scores"]["test"]] == [str(p) for p in members]


def test_members_with_their_own_validation_splits_are_not_fitted_again(ensemble_workspace, tmp_path):
    other = train_run(ensemble_workspace, "own-valid", "train.seed=2", "data.valid_seed=null")
    try:
        lines = []
        summary = make_ensemble([ensemble_workspace / "m0", other], tmp_path / "ens", lines.append, "cpu")
    finally:
        shutil.rmtree(other)
    assert summary["valid"] is None and summary["test"] is not None
    assert not (tmp_path / "ens" / "calibration.json").exists()
    assert any("validation splits differ" in line for line in lines)
    assert "none:" in json.loads((tmp_path / "ens" / "ensemble.json").read_text())["calibration"]


def test_multi_label_thresholds_are_chosen_again_or_averaged(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", multi_label_task(500, seed=3))
    write_jsonl(tmp_path / "test.jsonl", multi_label_task(100, seed=4))
    (tmp_path / "config.yaml").write_text(MULTI_LABEL_CONFIG.replace("epochs: 5", "epochs: 2"))
    runs = [train_run(tmp_path, f"s{seed}", f"train.seed={seed}") for seed in (0, 1)]  # own validation splits
    make_ensemble(runs, tmp_path / "mean", quiet, "cpu")
    own = [json.loads((run / "thresholds.json").read_text())["thresholds"] for run in runs]
    averaged = json.loads((tmp_path / "mean" / "thresholds.json").read_text())
    assert averaged["method"] == "members_mean"
    for label, value in averaged["thresholds"].items():
        assert value == pytest.approx((own[0][label] + own[1][label]) / 2)
    shared = [train_run(tmp_path, f"v{seed}", f"train.seed={seed}", "data.valid_seed=5") for seed in (0, 1)]
    make_ensemble(shared, tmp_path / "fitted", quiet, "cpu")
    chosen = json.loads((tmp_path / "fitted" / "thresholds.json").read_text())
    assert chosen["method"] != "members_mean" and "description" in chosen
    assert load_ensemble(tmp_path / "fitted").thresholds is not None


def test_a_member_that_changed_or_moved_is_refused(ensemble_workspace, tmp_path):
    copy = tmp_path / "m1"
    shutil.copytree(ensemble_workspace / "m1", copy)
    make_ensemble([ensemble_workspace / "m0", copy], tmp_path / "ens", quiet, "cpu")
    calibration = json.loads((copy / "calibration.json").read_text())
    calibration["temperature"] = 1.2345
    (copy / "calibration.json").write_text(json.dumps(calibration))
    with pytest.raises(RnnclfError, match="changed since the ensemble was made"):
        load_ensemble(tmp_path / "ens")
    shutil.rmtree(copy)
    with pytest.raises(RnnclfError, match="is gone"):
        load_ensemble(tmp_path / "ens")


def test_members_must_share_task_and_labels_and_be_finished(ensemble_workspace, tmp_path):
    m0, m1 = ensemble_workspace / "m0", ensemble_workspace / "m1"
    with pytest.raises(RnnclfError, match="at least two runs"):
        make_ensemble([m0], tmp_path / "a", quiet)
    with pytest.raises(RnnclfError, match="named twice"):
        make_ensemble([m0, m0], tmp_path / "a", quiet)
    relabelled = tmp_path / "relabelled"
    shutil.copytree(m1, relabelled)
    (relabelled / "labels.json").write_text(json.dumps(["neg", "other"]))
    with pytest.raises(RnnclfError, match="labels differ"):
        make_ensemble([m0, relabelled], tmp_path / "a", quiet)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(m1, unfinished)
    (unfinished / "metrics.json").unlink()
    with pytest.raises(RnnclfError, match="has not finished"):
        make_ensemble([m0, unfinished], tmp_path / "a", quiet)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(RnnclfError, match="already exists"):
        make_ensemble([m0, m1], tmp_path / "taken", quiet)
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "a").exists()
