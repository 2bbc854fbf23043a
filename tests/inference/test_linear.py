"""The linear model alone (model.encoder none, model.wide): trained through `rnnclf train`, predicted by numpy
without torch in the process, with the probabilities the torch Predictor gives."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnclf.config.loading import load_config
from rnnclf.recipes.classify import train

TOPICS = {
    "sport": "match goal team coach league score player",
    "money": "bank profit shares loan market price rate",
    "weather": "rain storm sunny wind cloud cold snow",
}


def topic_rows(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    filler = "the a of and to in was it on with".split()
    rows = []
    for _ in range(count):
        topic = rng.choice(list(TOPICS))
        words = [rng.choice(filler) for _ in range(rng.randint(3, 9))] + rng.sample(TOPICS[topic].split(), 2)
        rng.shuffle(words)
        rows.append((" ".join(words), topic))
    return rows


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    return path


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("linear")
    train_file, test_file = (
        write(folder / "train.csv", topic_rows(600, 1)),
        write(folder / "test.csv", topic_rows(200, 2)),
    )
    config = folder / "linear.yaml"
    config.write_text(f"data: {{train: {train_file}, test: {test_file}}}\nmodel: {{encoder: none, wide: true}}\n")
    summary = train(load_config(config, [f"output.run_dir={folder / 'run'}"]), log=lambda line: None)
    assert summary["test"]["accuracy"] > 0.95 and summary["epochs_run"] == 1
    assert summary["wide"]["c"] in [p["c"] for p in summary["wide"]["path"]]
    return folder / "run"


def test_the_numpy_predictor_gives_the_torch_predictors_probabilities(linear_run):
    from rnnclf.inference.linear import LinearPredictor
    from rnnclf.inference.predictor import Predictor

    texts = [text for text, _ in topic_rows(300, 3)] + ["nothing known here", "goal goal goal rain"]
    expected = Predictor.load(linear_run, "cpu").predict_proba(texts)
    got = LinearPredictor.load(linear_run).predict_proba(texts)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_predict_loads_no_torch_for_the_linear_model(linear_run, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(text for text, _ in topic_rows(50, 4)) + "\n")
    code = (
        "import sys\nfrom rnnclf.cli import main\n"
        f"sys.argv = ['rnnclf', 'predict', {str(linear_run)!r}, '--input', {str(texts)!r}, '--format', 'json']\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('torch loaded' if 'torch' in sys.modules else 'no torch', file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "no torch"
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 50 and all(line["label"] in TOPICS for line in lines)
