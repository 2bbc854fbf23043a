"""`rnnclf serve` end to end: the real server in a subprocess on 127.0.0.1, talked to over HTTP with httpx."""

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rnnclf.evaluation.scores import probabilities
from rnnclf.inference.explain import explain_predictions
from rnnclf.inference.predictor import Predictor

from helpers import ROOT
from helpers.cli import assert_user_error, rnnclf, running_server
from helpers.data import order_task, write_csv

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

MAX_TEXTS, MAX_BODY_BYTES = 5, 4000


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serve")
    write_csv(folder / "train.csv", order_task(600, seed=5))
    (folder / "config.yaml").write_text(
        "data: {train: train.csv}\n"
        "embedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 24}\n"
        "train: {epochs: 3, batch_size: 32, lr: 0.01, seed: 1}\n"
    )
    result = rnnclf("train", "--config", "config.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "runs" / "config"


@pytest.fixture(scope="module")
def server(trained) -> Iterator[str]:
    limits = ["--max-texts", str(MAX_TEXTS), "--max-body-bytes", str(MAX_BODY_BYTES)]
    with running_server(trained, trained.parent / "serve.log", *limits) as (url, _):
        yield url


def post(server: str, body: object = None, **kwargs) -> httpx.Response:
    return httpx.post(f"{server}/predict", json=body, timeout=30, **kwargs)


def test_predictions_equal_the_predictors(server, trained):
    from rnnclf.inference.predictor import Predictor

    predictor = Predictor.load(trained, "cpu")
    texts = ["the film was good not really", "not a good movie", "a great plot and fine acting"]

    one = post(server, {"text": texts[0]})
    assert one.status_code == 200, one.text
    [prediction] = one.json()["predictions"]
    [(label, probability)] = predictor.predict(texts[:1])[0]
    assert prediction["label"] == label and prediction["probability"] == pytest.approx(probability, abs=1e-6)
    assert prediction["top"] == [{"label": label, "probability": prediction["probability"]}]

    many = post(server, {"texts": texts, "top_k": 2})
    assert many.status_code == 200, many.text
    answered = many.json()["predictions"]
    expected = predictor.predict(texts, top_k=2)
    assert len(answered) == len(texts)
    for got, want in zip(answered, expected, strict=True):
        assert got["label"] == want[0][0]
        assert [t["label"] for t in got["top"]] == [label for label, _ in want]
        assert [t["probability"] for t in got["top"]] == pytest.approx([p for _, p in want], abs=1e-6)

    capped = post(server, {"text": texts[0], "top_k": 10}).json()["predictions"][0]["top"]
    assert sorted(t["label"] for t in capped) == ["neg", "pos"]


def test_a_text_longer_than_max_length_is_truncated_not_refused(server, trained):
    long_text = "not a good movie " + "the " * 700  # 700 tokens over max_length (400), still under the body limit
    answer = post(server, {"text": long_text})
    assert answer.status_code == 200, answer.text
    from rnnclf.inference.predictor import Predictor

    assert answer.json()["predictions"][0]["label"] == Predictor.load(trained, "cpu").predict([long_text])[0][0][0]


def test_info_health_docs_and_unknown_routes(server, trained):
    import rnnclf

    info = httpx.get(f"{server}/info").json()
    assert info["labels"] == json.loads((trained / "labels.json").read_text()) == ["neg", "pos"]
    assert info["num_labels"] == 2 and info["run"] == str(trained.resolve()) and info["device"] == "cpu"
    assert info["model"] == {
        "encoder": "gru",
        "hidden_size": 24,
        "num_layers": 1,
        "bidirectional": True,
        "pooling": "max",
        "tokenizer": "word",
        "max_length": 400,
        "embedding_dim": 16,
    }
    assert info["version"] == rnnclf.__version__
    assert info["limits"] == {"max_texts": MAX_TEXTS, "max_body_bytes": MAX_BODY_BYTES}

    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    docs = httpx.get(f"{server}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = httpx.get(f"{server}/openapi.json").json()
    assert {"/predict", "/info", "/health"} <= set(schema["paths"])
    assert {"text", "texts", "top_k", "coverage"} == set(
        schema["components"]["schemas"]["PredictRequest"]["properties"]
    )
    assert "predictions" in schema["components"]["schemas"]["PredictResponse"]["properties"]
    assert "413" in schema["paths"]["/predict"]["post"]["responses"]

    assert httpx.get(f"{server}/nope").status_code == 404
    assert httpx.get(f"{server}/predict").status_code == 405


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({}, ["body"], "text_or_texts"),
        ({"text": "good", "texts": ["bad"]}, ["body"], "text_or_texts"),
        ({"text": 3}, ["body", "text"], "string_type"),
        ({"texts": "good"}, ["body", "texts"], "list_type"),
        ({"texts": []}, ["body", "texts"], "too_short"),
        ({"text": "good", "top_k": -1}, ["body", "top_k"], "greater_than_equal"),
        ({"text": "good", "top_k": 0}, ["body", "top_k"], "greater_than_equal"),
        ({"text": "good", "topk": 2}, ["body", "topk"], "extra_forbidden"),
        (["good"], ["body"], "model_attributes_type"),
    ],
)
def test_malformed_requests_answer_422(server, body, loc, kind):
    answer = post(server, body)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["loc"] == loc and error["type"] == kind


def test_invalid_json_answers_422(server):
    answer = post(server, content=b'{"text": ', headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"text": "   "}, "text 1: empty text; nothing to classify"),
        ({"texts": ["a good movie", ""]}, "text 2: empty text; nothing to classify"),
    ],
)
def test_empty_texts_answer_422_naming_the_text(server, body, detail):
    answer = post(server, body)
    assert answer.status_code == 422 and answer.json() == {"detail": detail}


def test_limits_answer_413(server):
    too_many = post(server, {"texts": ["a good movie"] * (MAX_TEXTS + 1)})
    assert too_many.status_code == 413
    assert too_many.json()["detail"].startswith(f"too many texts: {MAX_TEXTS + 1} in one request")
    assert f"the limit is {MAX_TEXTS}" in too_many.json()["detail"]

    large = {"text": "good " * MAX_BODY_BYTES}
    by_length = post(server, large)
    assert by_length.status_code == 413
    assert by_length.json()["detail"].startswith(f"request body too large: the limit is {MAX_BODY_BYTES:,} bytes")
    data = json.dumps(large).encode()
    chunked = post(server, content=iter([data[:1000], data[1000:]]), headers={"content-type": "application/json"})
    assert chunked.request.headers.get("transfer-encoding") == "chunked"  # no Content-Length: counted as it arrives
    assert chunked.status_code == 413 and chunked.json() == by_length.json()
    url = httpx.URL(server)
    with socket.create_connection((url.host, url.port), timeout=10) as raw:  # refused before the body is sent
        raw.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999\r\n\r\n"
        )
        assert raw.recv(1000).startswith(b"HTTP/1.1 413 ")
    assert post(server, {"text": "good"}).status_code == 200  # the server is still fine


def test_loadtest_script_reports_figures(server):
    script = ROOT / "scripts" / "loadtest.py"
    command = [sys.executable, str(script), "--url", server, "--requests", "20", "--clients", "2", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["requests"] == figures["ok"] == 20 and figures["errors"] == 0
    assert figures["requests_per_s"] > 0 and figures["texts_per_s"] == figures["requests_per_s"]
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"] <= figures["latency_ms"]["max"]


def test_ctrl_c_stops_the_server_cleanly(trained):
    log = trained.parent / "ctrl_c.log"
    with running_server(trained, log) as (url, server):
        assert post(url, {"text": "a good movie"}).status_code == 200
        server.send_signal(signal.SIGINT)
        assert server.wait(30) in (0, 130)
    assert "Traceback" not in log.read_text()


def test_port_in_use_and_missing_run_are_one_line(trained):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = rnnclf("serve", str(trained), "--port", str(port))
    assert_user_error(result, f"cannot listen on 127.0.0.1:{port}", "in use")
    assert_user_error(rnnclf("serve", str(trained.parent / "nope")), "run directory not found")
    assert_user_error(rnnclf("serve", str(trained), "--port", "70000"), "--port")


def test_without_fastapi_serve_says_what_to_install(trained):
    code = (
        "import sys\n"
        "sys.modules['fastapi'] = None  # as if it were not installed\n"
        "from rnnclf.cli import main\n"
        f"sys.argv = ['rnnclf', 'serve', {str(trained)!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert_user_error(result, "rnnclf serve needs FastAPI and uvicorn: pip install 'rnnclf[serve]'")


def test_serve_answers_the_calibrated_probabilities(calibration_workspace):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from rnnclf.data.tokenizer import encode

    texts = [text for text, _ in order_task(5, 9)]
    predictor = Predictor.load(calibration_workspace / "run", "cpu")
    raw = probabilities(predictor.model_logits(encode(predictor.tokenizer, texts)), False).max(axis=1)
    with running_server(calibration_workspace / "run", calibration_workspace / "serve.log") as (url, _):
        answered = httpx.post(f"{url}/predict", json={"texts": texts}, timeout=30).json()["predictions"]
        info = httpx.get(f"{url}/info", timeout=30).json()
    assert info["temperature"] == pytest.approx(float(predictor.temperature[0]))
    got = [prediction["probability"] for prediction in answered]
    assert got == pytest.approx([p[0][1] for p in predictor.predict(texts)], abs=1e-6)
    assert not np.allclose(got, raw, atol=1e-3)


def test_serve_explain(explain_run, explain_predictor):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    limits = ["--max-explain-texts", "2", "--max-explain-steps", "40"]
    with running_server(explain_run, explain_run.parent / "explain.log", *limits) as (url, _):
        texts = ["the movie was not good", "a fine plot not really"]
        answer = httpx.post(f"{url}/explain", json={"texts": texts, "steps": 20}, timeout=60)
        assert answer.status_code == 200, answer.text
        expected = explain_predictions(explain_predictor, texts, explain_predictor.predict(texts), steps=20)
        for got, [found] in zip(answer.json()["predictions"], expected, strict=True):
            assert got["label"] == got["explained"] == found.label and got["top"][0]["label"] == found.label
            assert [token for token, _ in got["explanation"]] == found.words
            assert [score for _, score in got["explanation"]] == pytest.approx(found.scores.tolist(), abs=1e-3)

        info = httpx.get(f"{url}/info").json()
        assert info["explain"] == {"max_texts": 2, "max_steps": 40, "default_steps": 32}
        assert "/explain" in httpx.get(f"{url}/openapi.json").json()["paths"]

        too_many = httpx.post(f"{url}/explain", json={"texts": ["a good film"] * 3})
        assert too_many.status_code == 413 and "the limit is 2 (rnnclf serve --max-explain-texts)" in too_many.text
        too_long = httpx.post(f"{url}/explain", json={"text": "a good film", "steps": 41})
        assert too_long.status_code == 413 and "the limit is 40 (rnnclf serve --max-explain-steps)" in too_long.text
        empty = httpx.post(f"{url}/explain", json={"texts": ["a good film", " "]})
        assert empty.status_code == 422 and empty.json() == {"detail": "text 2: empty text; nothing to classify"}
