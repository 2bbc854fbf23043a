"""The HTTP app in-process (FastAPI's TestClient): multi-label answers and int8."""

import json

import pytest

from helpers.runs import MULTI_LABEL_LABELS


def test_serve_answers_label_sets_and_shows_the_thresholds(multi_label_workspace):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rnnclf.serve.app import create_app

    client = TestClient(create_app(multi_label_workspace / "run"))
    answer = client.post("/predict", json={"texts": ["the team and the coach", "the movie was"], "top_k": 1}).json()
    assert [p["labels"] for p in answer["predictions"]] == [["sport"], []]
    assert (
        len(answer["predictions"][1]["top"]) == 1 and sorted(answer["predictions"][0]["scores"]) == MULTI_LABEL_LABELS
    )
    info = client.get("/info").json()
    saved = json.loads((multi_label_workspace / "run" / "thresholds.json").read_text())["thresholds"]
    assert info["multi_label"] and info["thresholds"] == pytest.approx(saved)


def test_serve_answers_with_the_int8_model(int8_run, int8_checked):
    from fastapi.testclient import TestClient

    from rnnclf.inference.predictor import Predictor
    from rnnclf.serve.app import create_app

    assert int8_checked.returncode == 0, int8_checked.stderr
    predictor = Predictor.load(int8_run, int8=True)
    assert type(predictor.model.head).__name__ == "Linear" and "quantized" in type(predictor.model.head).__module__
    client = TestClient(create_app(predictor))
    answer = client.post("/predict", json={"texts": ["not good", "really great"]})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
