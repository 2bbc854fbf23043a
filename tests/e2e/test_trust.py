"""Knowing when not to trust a prediction, as users ask for it: prediction sets (predict / eval / serve --coverage),
out-of-domain flags, and rnnclf calibrate. The sets are checked against conformal.json's scores recomputed here,
eval against predict, calibrate against the training's own fit."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnnclf.evaluation.calibration import fit_temperature
from rnnclf.inference.evaluate import encoded_split, labelled_split
from rnnclf.inference.predictor import Predictor

from helpers.cli import assert_user_error, rnnclf

GIBBERISH = ["zxqv blorp wibble frobnicate quux", "qwpoeiru zmxncbv asdlfkj", "der Film war wirklich nicht gut heute"]


@pytest.fixture
def run(calibration_workspace, tmp_path) -> Path:
    """A copy of the calibrated single-label run (tests here change it)."""
    return Path(shutil.copytree(calibration_workspace / "run", tmp_path / "run"))


def labelled_test_texts(calibration_workspace) -> list[tuple[str, str]]:
    with open(calibration_workspace / "test.csv", newline="", encoding="utf-8") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


def predicted(run: Path, texts: list[str], *extra: str) -> list[dict]:
    result = rnnclf("predict", str(run), *texts, "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def lac_set(probs: dict[str, float], scores: dict[str, list[float]], coverage: float) -> set[str]:
    """Split-conformal LAC, class by class (each class here has over 20 validation texts): label c is in the set
    when 1 - p_c is at most the ceil((n_c + 1) * coverage)-th smallest validation score of class c."""
    chosen = set()
    for label, own in scores.items():
        rank = math.ceil((len(own) + 1) * coverage)
        if rank <= len(own) and 1 - probs[label] <= sorted(own)[rank - 1]:
            chosen.add(label)
    return chosen


def test_prediction_sets_are_the_conformal_quantiles(run, calibration_workspace):
    rows = labelled_test_texts(calibration_workspace)[:120]
    scores = json.loads((run / "conformal.json").read_text())["scores"]
    assert all(len(own) >= 20 for own in scores.values())
    for coverage in (0.8, 0.95):
        answers = predicted(run, [text for text, _ in rows], "--coverage", str(coverage), "--top-k", "2")
        for answer in answers:
            probs = {item["label"]: item["probability"] for item in answer["top"]}
            assert set(answer["set"]) == lac_set(probs, scores, coverage), answer
            assert answer["abstain"] == (len(answer["set"]) in (0, 2))
    assert any(len(answer["set"]) == 1 for answer in answers) and any(len(a["set"]) == 2 for a in answers)


def test_eval_coverage_is_what_predict_answers(run, calibration_workspace):
    rows = labelled_test_texts(calibration_workspace)
    answers = predicted(run, [text for text, _ in rows], "--coverage", "0.8")
    result = rnnclf("eval", str(run), "--coverage", "0.8", "--format", "json")
    assert result.returncode == 0, result.stderr
    sets = json.loads(result.stdout)["prediction_sets"]
    assert sets["empirical_coverage"] == pytest.approx(
        np.mean([label in a["set"] for a, (_, label) in zip(answers, rows, strict=True)])
    )
    assert sets["mean_set_size"] == pytest.approx(np.mean([len(a["set"]) for a in answers]))
    assert sets["texts"] == len(rows) and set(sets["per_class"]) == {"neg", "pos"}
    assert (run / "eval" / "test-coverage0.8.json").exists()


def test_multi_label_sets_control_recall(multi_label_workspace, tmp_path):
    run = multi_label_workspace / "run"
    lines = (multi_label_workspace / "test.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    answers = predicted(run, [row["text"] for row in rows], "--coverage", "0.9")
    missed = [
        len(set(row["labels"]) - set(answer["set"])) / len(row["labels"])
        for row, answer in zip(rows, answers, strict=True)
        if row["labels"]
    ]
    result = rnnclf("eval", str(run), "--coverage", "0.9", "--format", "json")
    assert result.returncode == 0, result.stderr
    sets = json.loads(result.stdout)["prediction_sets"]
    assert sets["recall_risk"] == pytest.approx(np.mean(missed))
    assert sets["method"] == "recall" and sets["labelled_texts"] == len(missed)


def test_out_of_domain_texts_are_flagged_with_a_reason(run, calibration_workspace):
    rows = labelled_test_texts(calibration_workspace)
    answers = predicted(run, GIBBERISH + [text for text, _ in rows])
    assert all(any("unknown to the model" in reason for reason in a["out_of_domain"]) for a in answers[:3])
    flagged = np.mean([bool(answer["out_of_domain"]) for answer in answers[3:]])
    assert flagged <= 0.05, flagged  # the run's own kind of text is rarely flagged
    table = rnnclf("predict", str(run), GIBBERISH[0], "--format", "table")
    assert "OUT OF DOMAIN" in table.stdout


def test_calibrate_gives_an_old_run_its_sets_and_keeps_what_it_had(run):
    original = {name: (run / name).read_text() for name in ("calibration.json", "conformal.json")}
    (run / "conformal.json").unlink()  # a run from before prediction sets
    assert_user_error(rnnclf("predict", str(run), "good film", "--coverage", "0.9"), "rnnclf calibrate")
    result = rnnclf("calibrate", str(run))
    assert result.returncode == 0, result.stderr
    assert "on valid" in result.stdout
    # the same validation texts and weights: the same temperature and scores as training fitted
    assert (
        json.loads((run / "conformal.json").read_text())["scores"] == json.loads(original["conformal.json"])["scores"]
    )
    new, old = (
        json.loads(text)["temperature"]
        for text in ((run / "calibration.json").read_text(), original["calibration.json"])
    )
    assert new == pytest.approx(old, rel=1e-6)
    kept = list((run / "replaced").glob("*/calibration.json"))
    assert len(kept) == 1 and kept[0].read_text() == original["calibration.json"]
    assert predicted(run, ["good film"], "--coverage", "0.9")[0]["set"]


def test_calibrate_on_new_data(run, calibration_workspace):
    result = rnnclf("calibrate", str(run), "--data", str(calibration_workspace / "test.csv"), "--conformal", "aps")
    assert result.returncode == 0, result.stderr
    predictor = Predictor.load(run)
    labelled, _ = labelled_split(predictor.run, calibration_workspace / "test.csv", None)
    encoded, targets = encoded_split(predictor, labelled)
    expected = fit_temperature(predictor.model_logits(encoded), targets).temperature[0]
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["temperature"] == pytest.approx(expected, rel=1e-5)
    assert calibration["fitted_on"].endswith("test.csv")
    conformal = json.loads((run / "conformal.json").read_text())
    assert conformal["method"] == "aps" and conformal["texts"] == len(targets)
    evaluated = rnnclf("eval", str(run), "--coverage", "0.9", "--format", "json")  # its test file: the same texts
    assert evaluated.returncode == 0 and "no test of them" in evaluated.stderr
    answers = predicted(run, ["good film", "not a bad film at all"], "--coverage", "0.5")
    assert all(answer["set"] and answer["set"][0] == answer["label"] for answer in answers)  # APS: never empty


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "nan"])
def test_coverage_outside_zero_one_is_one_line(run, value):
    before = sorted((run / "eval").glob("*")) if (run / "eval").exists() else []
    assert_user_error(rnnclf("predict", str(run), "good", "--coverage", value), "strictly between 0 and 1")
    assert_user_error(rnnclf("eval", str(run), "--coverage", value), "strictly between 0 and 1")
    assert (sorted((run / "eval").glob("*")) if (run / "eval").exists() else []) == before


def test_calibrate_mistakes_are_one_line(run, tmp_path):
    assert_user_error(rnnclf("calibrate", str(tmp_path)), "not a run directory")
    assert_user_error(rnnclf("calibrate", str(run), "--conformal", "best"), "--conformal best")
    assert not (run / "replaced").exists()


def test_serve_answers_sets_and_flags(run):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rnnclf.serve.app import create_app

    client = TestClient(create_app(run))
    answer = client.post("/predict", json={"texts": ["good film", GIBBERISH[0]], "coverage": 0.9}).json()
    first, second = answer["predictions"]
    assert first["set"] and isinstance(first["abstain"], bool)
    assert second["out_of_domain"] and first["out_of_domain"] == []
    assert client.post("/predict", json={"text": "good", "coverage": 1.5}).status_code == 422
    plain = client.post("/predict", json={"text": "good"}).json()["predictions"][0]
    assert plain["set"] is None and plain["out_of_domain"] == []
    assert client.get("/info").json()["prediction_sets"] == "lac"
    (run / "conformal.json").unlink()
    refused = TestClient(create_app(run)).post("/predict", json={"text": "good", "coverage": 0.9})
    assert refused.status_code == 422 and "rnnclf calibrate" in refused.json()["detail"]
