"""The pretrain recipe in-process: a language model learns what it can, a classifier starts from its weights
(model.init) and unfreezes gradually; pretrain uses the one training loop (TensorBoard, thread changes)."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import load_file

from rnnclf.config.loading import load_config
from rnnclf.recipes.classify import train
from rnnclf.recipes.pretrain import pretrain

from helpers.data import write_csv
from helpers.runs import LM_CONFIG, language_model_perplexities


def cycle_texts(n: int, seed: int) -> list[tuple[str, str]]:
    """Texts walking round a cycle of ten words from a random start: each next (and previous) word is certain."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(10)]
    rows = []
    for _ in range(n):
        start, length = rng.randrange(10), rng.randint(3, 30)
        rows.append((" ".join(words[(start + i) % 10] for i in range(length)), rng.choice(["a", "b"])))
    return rows


def test_a_language_model_learns_a_certain_sequence_in_both_directions(tmp_path):
    """Next and previous words are certain: both directions' validation perplexity falls close to 1."""
    write_csv(tmp_path / "train.csv", cycle_texts(600, seed=1))
    config = tmp_path / "lm.yaml"
    config.write_text(
        "data: {train: train.csv, max_length: null}\nembedding: {dim: 16}\nmodel: {encoder: gru, hidden_size: 32}\n"
        "train: {epochs: 4, batch_size: 16, lr: 0.02, num_threads: 1}\npretrain: {bptt: 5}\n"
        f"output: {{run_dir: {tmp_path / 'lm'}}}\n"
    )
    summary = pretrain(load_config(config), log=lambda message: None)
    assert summary["valid_perplexity"] < 1.3  # chance is 12 (ten words, <unk>, <pad>)
    recomputed, unigram = language_model_perplexities(tmp_path / "lm")  # the saved model's, computed here
    assert summary["valid_perplexity"] == pytest.approx(recomputed, rel=1e-4) and unigram > 9
    records = [json.loads(line) for line in (tmp_path / "lm" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["valid_perplexity"] < records[0]["valid_perplexity"]


def test_the_classifier_starts_from_the_language_model_weights(lm_folder):
    """Before any step, the classifier's embedding and recurrent weights are the language model's best ones."""
    config = load_config(lm_folder / "classifier.yaml", ["model.init=" + str(lm_folder / "lm"), "train.lr=1e-30"])
    config = config.model_copy(update={"output": config.output.model_copy(update={"run_dir": lm_folder / "tiny-lr"})})
    train(config, log=lambda message: None)
    language_model, classifier = (
        load_file(lm_folder / "lm" / "model.safetensors"),
        load_file(lm_folder / "tiny-lr" / "model.safetensors"),
    )
    shared = [name for name in classifier if not name.startswith("head.")]
    assert shared and all(name in language_model for name in shared)
    assert all(torch.allclose(classifier[name], language_model[name], atol=1e-6) for name in shared)


def test_gradual_unfreezing_trains_the_head_alone_first(lm_folder):
    """With gradual_unfreezing 1 the first epoch leaves the embedding and recurrent layers as the language model
    had them; with lr_decay the recurrent layer learns at lr / 2.6."""
    config = load_config(
        lm_folder / "classifier.yaml",
        [f"model.init={lm_folder / 'lm'}", "train.epochs=1", "train.gradual_unfreezing=1", "train.lr_decay=2.6"]
        + ["train.seed=1"],
    )
    config = config.model_copy(update={"output": config.output.model_copy(update={"run_dir": lm_folder / "frozen"})})
    lines: list[str] = []
    train(config, log=lines.append)
    # both are said: layers that never thaw in so few epochs, and validation texts the language model has read
    assert any("trains only the top 1 of 3 layer groups" in line for line in lines)
    assert any("some of this run's validation texts" in line for line in lines)
    language_model, classifier = (
        load_file(lm_folder / "lm" / "model.safetensors"),
        load_file(lm_folder / "frozen" / "model.safetensors"),
    )
    assert all(torch.equal(classifier[n], language_model[n]) for n in classifier if not n.startswith("head."))


@pytest.mark.slow
def test_pretrain_writes_tensorboard_events_and_records_thread_changes(lm_folder, tmp_path, monkeypatch):
    """One training loop: what train does, pretrain does too. Each thread change the governor makes (here forced by
    a fake load from other processes) is in env.json, and output.tensorboard writes event files."""
    pytest.importorskip("tensorboard")
    from rnnclf.device import cores, threads

    loads = iter([0.0] + [1.2, 0.0, 0.0] * 1000)  # another job takes a core, then leaves, again and again
    monkeypatch.setattr(threads.OtherLoad, "measure", lambda self: next(loads))
    monkeypatch.setattr(threads.ThreadGovernor, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr(cores, "available_cores", lambda: 2)  # two cores to give and take, on any machine
    config = tmp_path / "lm.yaml"
    config.write_text(LM_CONFIG.replace("train.csv, test: test.csv", str(lm_folder / "train.csv")))
    overrides = ["train.num_threads=null", "output.tensorboard=true", f"output.run_dir={tmp_path / 'lm'}"]
    pretrain(load_config(config, overrides), log=lambda line: None)
    env = json.loads((tmp_path / "lm" / "env.json").read_text())
    assert len(env["thread_changes"]) >= 2 and {c["threads"] for c in env["thread_changes"]} >= {1}
    events = list((tmp_path / "lm" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and max(event.stat().st_size for event in events) > 100
