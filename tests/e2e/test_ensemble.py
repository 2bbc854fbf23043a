"""rnnclf ensemble as a user runs it, and the ensemble directory in eval, predict, report and serve like a run;
each mistake one line, exit 2, nothing written."""

import json
import shutil

import pytest

from helpers.cli import assert_user_error, rnnclf


@pytest.fixture(scope="module")
def ensemble_dir(ensemble_workspace, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble-cli") / "ens"
    result = rnnclf("ensemble", "m0", "m1", "--out", str(out), "--format", "json", cwd=ensemble_workspace)
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def test_eval_predict_and_report_take_an_ensemble(ensemble_workspace, ensemble_dir):
    out, summary = ensemble_dir
    evaluated = rnnclf("eval", str(out), "--format", "json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    valid = rnnclf("eval", str(out), "--split", "valid", "--format", "json")  # shared: none of them trained on it
    assert valid.returncode == 0 and json.loads(valid.stdout)["accuracy"] == pytest.approx(summary["valid"]["accuracy"])
    predicted = rnnclf("predict", str(out), "the movie was not good", "good not", "--format", "json")
    assert predicted.returncode == 0, predicted.stderr
    assert [json.loads(line)["label"] for line in predicted.stdout.splitlines()] == ["neg", "pos"]
    report = rnnclf("report", str(ensemble_workspace / "m0"), str(out), "--format", "json")
    rows = json.loads(report.stdout)
    assert [row["ensemble.members"] for row in rows] == [None, 2]
    assert rows[1]["test_accuracy"] == pytest.approx(summary["test"]["accuracy"])


def test_serve_answers_with_an_ensemble(ensemble_workspace, ensemble_dir):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rnnclf.serve.app import create_app

    client = TestClient(create_app(ensemble_dir[0]))
    answer = client.post("/predict", json={"texts": ["the movie was not good"]}).json()
    assert answer["predictions"][0]["label"] == "neg"
    info = client.get("/info").json()
    assert info["members"] == [str(ensemble_workspace / "m0"), str(ensemble_workspace / "m1")]
    assert info["explain"] is None
    assert client.post("/explain", json={"texts": ["good"]}).status_code == 501


def test_what_an_ensemble_refuses(ensemble_dir):
    out = str(ensemble_dir[0])
    assert_user_error(rnnclf("predict", out, "good", "--explain"), "explains one model")
    assert_user_error(rnnclf("predict", out, "good", "--int8"), "--int8 is for one run")
    assert_user_error(rnnclf("export", out), "an ensemble of runs", "pass one of its members")
    assert_user_error(rnnclf("train", "--resume", out), out)


def test_ensemble_mistakes_write_nothing(ensemble_workspace, multi_label_workspace, tmp_path):
    folder = ensemble_workspace
    assert_user_error(rnnclf("ensemble", "m0", "--out", str(tmp_path / "a"), cwd=folder), "at least two runs")
    mixed = rnnclf("ensemble", "m0", str(multi_label_workspace / "run"), "--out", str(tmp_path / "a"), cwd=folder)
    assert_user_error(mixed, "multi-label", "members share their task")
    assert_user_error(rnnclf("ensemble", "m0", "nowhere", "--out", str(tmp_path / "a"), cwd=folder), "not found")
    assert not (tmp_path / "a").exists()
    moved = tmp_path / "m1"
    shutil.copytree(folder / "m1", moved)
    assert rnnclf("ensemble", "m0", str(moved), "--out", str(tmp_path / "ens"), cwd=folder).returncode == 0
    shutil.rmtree(moved)
    assert_user_error(rnnclf("predict", str(tmp_path / "ens"), "good"), "is gone")
