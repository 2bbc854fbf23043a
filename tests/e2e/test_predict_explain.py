"""`rnnclf predict --explain` and `--explain-html` end to end: what the user sees of integrated gradients."""

import json

import pytest

from rnnclf.inference.explain import explain_predictions

from helpers.cli import assert_user_error, rnnclf
from helpers.data import TOPICS, multi_label_task, write_jsonl


def test_predict_explain_json(explain_run, explain_predictor):
    texts = ["the movie was not good", "a great Zorblax film not"]
    result = rnnclf("predict", str(explain_run), *texts, "--explain", "--explain-steps", "16", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    expected = explain_predictions(explain_predictor, texts, explain_predictor.predict(texts), steps=16)
    for record, [found] in zip(records, expected, strict=True):
        assert record["explained"] == record["label"] == found.label
        assert [token for token, _ in record["explanation"]] == found.words
        assert [score for _, score in record["explanation"]] == pytest.approx(found.scores.tolist(), abs=1e-3)
    assert records[1]["explanation"][2][0] == "Zorblax"


def test_predict_explain_table_is_plain_when_piped(explain_run):
    result = rnnclf("predict", str(explain_run), "the movie was not good", "--explain", "--format", "table")
    assert result.returncode == 0, result.stderr
    row, explanation = result.stdout.splitlines()
    assert row.startswith("the movie was not good") and "\x1b" not in result.stdout
    label = row.split()[-2]
    assert explanation.startswith(f"    {label}: the(") and " not(+" in explanation


def test_explain_html_is_one_self_contained_page(explain_run, tmp_path):
    page = tmp_path / "why.html"
    texts = ["the movie was not <b>good</b> & fine", "a great film not"]
    result = rnnclf("predict", str(explain_run), *texts, "--explain-html", str(page))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert all("explanation" in record for record in records)  # --explain-html implies --explain
    written = page.read_text()
    assert "&lt;b&gt;good&lt;/b&gt; &amp; fine" in written and "<b>" not in written
    assert "<script" not in written and "http" not in written and "src=" not in written
    for number, record in enumerate(records, start=1):
        assert f"{number}. {record['label']} ({record['probability']:.3f})" in written
    assert "supports the label" in written and "speaks against it" in written
    assert [p.name for p in tmp_path.iterdir()] == ["why.html"]  # no temporary file left


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--explain-html", "missing/why.html"], ["--explain-html missing/why.html", "missing does not exist"]),
        (["--explain", "--backend", "onnx"], ["--explain needs the torch model", "drop --backend onnx"]),
        (["--explain", "--int8"], ["--explain needs the fp32 model", "drop --int8"]),
        (["--explain-steps", "0"], ["--explain-steps 0", "1 to 1024"]),
        (["--explain-steps", "2000", "--format", "json"], ["--explain-steps 2000"]),
    ],
)
def test_bad_explain_options_are_one_line_before_any_work(explain_run, tmp_path, args, fragments):
    result = rnnclf("predict", str(explain_run), "a good film", *args, cwd=tmp_path)
    assert_user_error(result, *fragments)
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_explain_steps_alone_explains(explain_run):
    result = rnnclf("predict", str(explain_run), "not a good film", "--explain-steps", "8", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [token for token, _ in json.loads(result.stdout)["explanation"]] == ["not", "a", "good", "film"]


def test_control_characters_reach_the_terminal_escaped(explain_run):
    result = rnnclf("predict", str(explain_run), "not a \x1b[31mgood film", "--explain", "--format", "table")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\\x1b" in result.stdout  # written as the escape, not sent


def test_explaining_an_empty_text_names_it(explain_run):
    assert_user_error(rnnclf("predict", str(explain_run), "a good film", "   ", "--explain"), "text 2: empty text")


def test_multi_label_explains_each_label_by_its_own_words(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", multi_label_task(800, seed=1))
    (tmp_path / "ml.yaml").write_text(
        "data: {train: train.jsonl, multi_label: true, label_field: labels, max_length: 40}\n"
        "embedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 16}\n"
        "train: {epochs: 4, batch_size: 32, lr: 0.01, seed: 0}\n"
    )
    assert rnnclf("train", "--config", "ml.yaml", "--run-dir", "run", cwd=tmp_path).returncode == 0
    texts = ["the bank was a story and the match", "the film and the movie was a story"]
    result = rnnclf("predict", str(tmp_path / "run"), *texts, "--explain")
    assert result.returncode == 0, result.stderr
    with_topics, without = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(with_topics["labels"]) == ["money", "sport"]
    assert list(with_topics["explanations"]) == with_topics["labels"]
    for label, explanation in with_topics["explanations"].items():
        top_word = max(explanation, key=lambda pair: pair[1])[0]
        assert top_word in TOPICS[label]  # bank for money, match for sport
    assert without["labels"] == [] and list(without["explanations"]) == [next(iter(without["scores"]))]
    page = tmp_path / "why.html"
    assert rnnclf("predict", str(tmp_path / "run"), *texts, "--explain-html", str(page)).returncode == 0
    assert page.read_text().count("no label reaches its threshold") == 1  # the second text only
