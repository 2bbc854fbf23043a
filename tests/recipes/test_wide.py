"""model.wide: the n-gram head fitted exactly first, the recurrent head trained as before, their sum weighed on
validation; the linear baseline beside the run; resume, every encoder, multi-label."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rnnclf.config.loading import load_config
from rnnclf.inference.predictor import Predictor
from rnnclf.recipes.classify import resume, train

from helpers.data import write_csv

POSITIVE, NEGATIVE = ["good", "great", "fine", "superb"], ["bad", "awful", "poor", "dull"]
FILLER = ["the", "movie", "was", "plot", "acting", "really", "and", "a"]


def order_rows(count: int, seed: int) -> list[tuple[str, str]]:
    """The label turns on word order ('not good' against 'good not'): a bag of n-grams of 1 word cannot tell."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        adjective, negated = rng.choice(POSITIVE + NEGATIVE), rng.random() < 0.5
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 6))]
        pair = ["not", adjective] if negated else [adjective, "not"]
        at = rng.randint(0, len(words))
        rows.append((" ".join(words[:at] + pair + words[at:]), "pos" if (adjective in POSITIVE) != negated else "neg"))
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wide")
    write_csv(folder / "train.csv", order_rows(900, 1))
    write_csv(folder / "test.csv", order_rows(200, 2))
    (folder / "wide.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\nembedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 16, wide: true}\nwide: {ngrams: 1, c: 1.0}\n"
        "train: {epochs: 4, batch_size: 32, lr: 0.01, num_threads: 1}\n"
    )
    return folder


def run(data: Path, name: str, *overrides: str, **hooks) -> tuple[dict, Path]:
    config = load_config(data / "wide.yaml", [f"output.run_dir={data / name}", *overrides])
    return train(config, log=lambda line: None, **hooks), data / name


def test_the_sum_is_weighed_on_validation_and_the_baseline_is_the_wide_head(data):
    summary, folder = run(data, "order")
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert all("wide_scale" in record for record in records)
    baseline = summary["linear_baseline"]
    assert baseline["from"] == "the run's wide head" and baseline["c"] == 1.0
    # single words cannot tell 'not good' from 'good not': the wide head alone is near chance, the sum is not
    assert baseline["valid"]["accuracy"] < 0.7 and summary["valid"]["accuracy"] > 0.85
    assert records[summary["best_epoch"] - 1]["wide_scale"] <= 1.0  # the order is the recurrent head's to read
    assert (folder / "wide_features.safetensors").exists()


def test_predictions_do_not_depend_on_the_batch(data):
    _, folder = run(data, "batches", "train.epochs=1")
    predictor = Predictor.load(folder, "cpu")
    texts = [text for text, _ in order_rows(60, 3)] + ["good", "not good the movie was really the plot and a acting"]
    encoded = predictor.encode(texts)
    from rnnclf.inference.logits import predict_logits

    alone = np.concatenate(
        [predict_logits(predictor.model, encoded.take(np.array([i])), predictor.device) for i in range(len(texts))]
    )
    np.testing.assert_allclose(
        predict_logits(predictor.model, encoded, predictor.device, batch_size=16), alone, atol=2e-6
    )


def test_a_stopped_wide_run_resumes_exactly(data):
    _, whole = run(data, "whole", "train.epochs=3")

    def stop_after_two(epoch: int, score: float, last: bool) -> None:
        if epoch == 2:
            raise KeyboardInterrupt  # after end_epoch saved the state, as a kill between epochs would leave it

    with pytest.raises(KeyboardInterrupt):
        run(data, "stopped", "train.epochs=3", on_epoch=stop_after_two)
    resume(data / "stopped", log=lambda line: None)
    a, b = load_file(whole / "model.safetensors"), load_file(data / "stopped" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("encoder", ["lstm", "rnn", "bag"])
def test_every_encoder_takes_a_wide_head(data, encoder):
    summary, folder = run(data, f"with-{encoder}", f"model.encoder={encoder}", "train.epochs=1")
    assert summary["wide"]["features"] > 10 and "wide.weight" in load_file(folder / "model.safetensors")


def test_a_multi_label_run_with_a_wide_head(data):
    rng = random.Random(5)
    topics = {"sport": "match goal team", "money": "bank profit loan", "rain": "storm wind cloud"}
    rows = []
    for _ in range(400):
        chosen = rng.sample(list(topics), rng.choice([1, 1, 2]))
        words = [rng.choice(FILLER) for _ in range(4)] + [rng.choice(topics[t].split()) for t in chosen]
        rng.shuffle(words)
        rows.append((" ".join(words), "|".join(sorted(chosen))))
    write_csv(data / "multi.csv", rows)
    config = load_config(
        data / "wide.yaml",
        [
            f"data.train={data / 'multi.csv'}",
            "data.test=null",
            "data.multi_label=true",
            f"output.run_dir={data / 'multi'}",
        ],
    )
    summary = train(config, log=lambda line: None)
    assert summary["valid"]["micro_f1"] > 0.9 and summary["linear_baseline"]["valid"]["micro_f1"] > 0.9
    assert (data / "multi" / "thresholds.json").exists() and (data / "multi" / "calibration.json").exists()


def test_a_run_behind_its_linear_baseline_says_so(tmp_path, monkeypatch):
    """A recurrent run that learned little (1 epoch at a tiny rate) on texts a bag of words tells apart: the linear
    baseline fitted after training scores higher on validation, and the end of training says so in one line."""
    from rnnclf.recipes import baseline

    from helpers.data import topic_task

    write_csv(tmp_path / "train.csv", topic_task(400, 1))
    (tmp_path / "plain.yaml").write_text(
        "data: {train: train.csv}\nembedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\n"
        "train: {epochs: 1, lr: 0.00001, num_threads: 1}\n"
    )
    monkeypatch.setattr(baseline, "BUDGET", 1000.0)  # a tiny run's 10% would be too little for any fit
    lines: list[str] = []
    summary = train(load_config(tmp_path / "plain.yaml", [f"output.run_dir={tmp_path / 'run'}"]), log=lines.append)
    found = summary["linear_baseline"]
    assert found["from"] == "fitted after training" and found["valid"]["accuracy"] > summary["valid"]["accuracy"]
    behind = [line for line in lines if "the linear baseline scores higher on validation" in line]
    assert len(behind) == 1 and behind[0].startswith("rnnclf: warning:")


def test_a_baseline_too_slow_for_its_share_is_skipped_with_the_command(tmp_path, monkeypatch):
    from rnnclf.recipes import baseline

    from helpers.data import topic_task

    write_csv(tmp_path / "train.csv", topic_task(300, 2))
    (tmp_path / "plain.yaml").write_text(
        "data: {train: train.csv}\nembedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\ntrain: {epochs: 1}\n"
    )
    monkeypatch.setattr(baseline, "BUDGET", 0.0)
    lines: list[str] = []
    summary = train(load_config(tmp_path / "plain.yaml", [f"output.run_dir={tmp_path / 'run'}"]), log=lines.append)
    assert "skipped" in summary["linear_baseline"] and "model.encoder=none" in summary["linear_baseline"]["command"]
    assert any(line.startswith("linear baseline: not fitted") and "model.wide=true" in line for line in lines)
