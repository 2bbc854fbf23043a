"""The linear model alone (model.encoder none, model.wide): trained through `rnnclf train`, predicted by numpy
without torch in the process, with the probabilities the torch Predictor gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnclf.config.loading import load_config
from rnnclf.recipes.classify import train

from helpers.data import WORDY_TOPICS, topic_task, write_csv


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("linear")
    train_file, test_file = (
        write_csv(folder / "train.csv", topic_task(600, 1)),
        write_csv(folder / "test.csv", topic_task(200, 2)),
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

    texts = [text for text, _ in topic_task(300, 3)] + ["nothing known here", "goal goal goal rain"]
    expected = Predictor.load(linear_run, "cpu").predict_proba(texts)
    got = LinearPredictor.load(linear_run).predict_proba(texts)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_predict_loads_no_torch_for_the_linear_model(linear_run, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(text for text, _ in topic_task(50, 4)) + "\n")
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
    assert len(lines) == 50 and all(line["label"] in WORDY_TOPICS for line in lines)
