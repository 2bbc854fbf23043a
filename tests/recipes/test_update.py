"""Updates (rnnclf train --init RUN): the earlier run's words keep their ids and its labels their output rows, new
words and labels get their own, the new run records where it started, rehearsal keeps the old labels from being
forgotten (and without it they are), and a stopped update resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rnnclf.config.loading import load_config
from rnnclf.data.corpus import load_corpus
from rnnclf.data.tokenizer import extend_vocabulary, fit_tokenizer
from rnnclf.inference.predictor import Predictor
from rnnclf.models.classifier import RNNClassifier, classifier_arguments
from rnnclf.recipes.classify import resume, train
from rnnclf.recipes.update import Rehearsal, load_start, warm_weights

from helpers.cli import rnnclf
from helpers.data import sha256, topic_task, write_csv

MODEL = (
    "embedding: {dim: 16}\nmodel: {encoder: gru, hidden_size: 16, head_dropout: 0.0}\n"
    "train: {epochs: 4, batch_size: 16, lr: 0.01, num_threads: 1}\n"
)


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """An earlier run that knows sport and money; new texts of a new label, weather, with words it never saw."""
    folder = tmp_path_factory.mktemp("update")
    rows = topic_task(900, seed=1)
    write_csv(folder / "old.csv", [row for row in rows[:600] if row[1] != "weather"])
    new = [(text.replace("rain", "drizzle"), label) for text, label in rows[600:] if label == "weather"]
    write_csv(folder / "new.csv", new)
    test = topic_task(300, seed=2)
    write_csv(folder / "test_old.csv", [row for row in test if row[1] != "weather"])
    write_csv(folder / "test_new.csv", [row for row in test if row[1] == "weather"])
    (folder / "old.yaml").write_text("data: {train: old.csv}\n" + MODEL)
    (folder / "new.yaml").write_text("data: {train: new.csv}\n" + MODEL)
    train(load_config(folder / "old.yaml", [f"output.run_dir={folder / 'old'}"]), log=lambda line: None)
    return folder


def accuracy(run: Path, test: Path) -> float:
    lines = test.read_text().splitlines()[1:]
    texts, labels = [line.rsplit(",", 1)[0] for line in lines], [line.rsplit(",", 1)[1] for line in lines]
    predictor = Predictor.load(run)
    chosen = predictor.predict_proba(texts).argmax(axis=1)
    return float(np.mean([predictor.labels[i] == label for i, label in zip(chosen, labels, strict=True)]))


def update(workspace: Path, name: str, *overrides: str, on_epoch=None) -> Path:
    settings = [f"output.run_dir={workspace / name}", f"model.init={workspace / 'old'}", *overrides]
    train(load_config(workspace / "new.yaml", settings), log=lambda line: None, on_epoch=on_epoch)
    return workspace / name


def test_new_words_are_appended_and_known_ones_keep_their_ids():
    old = fit_tokenizer(["the match the goal", "a bank loan"], 40)
    new = extend_vocabulary(old, ["the drizzle drizzle storm", "a storm storm storm match"], 60, max_vocab=10)
    known, extended = old.get_vocab(), new.get_vocab()
    assert {token: extended[token] for token in known} == known
    # most frequent first, up to max_vocab in all (8 known): storm (4), then drizzle (2)
    assert [t for t, i in sorted(extended.items(), key=lambda item: item[1]) if t not in known] == ["storm", "drizzle"]
    assert new.truncation["max_length"] == 60
    assert new.encode("drizzle match").ids == [extended["drizzle"], known["match"]]


def test_the_earlier_weights_land_on_their_words_and_labels(workspace):
    config = load_config(workspace / "new.yaml", [f"model.init={workspace / 'old'}"])
    start = load_start(config)
    labels = ["money", "sport", "weather"]
    vocabulary = start.run.tokenizer.get_vocab_size() + 5
    torch.manual_seed(0)
    model = RNNClassifier(vocabulary, len(labels), **classifier_arguments(config))
    fresh = {name: value.clone() for name, value in model.state_dict().items()}
    warm_weights(model, start, labels)
    old, now = start.run.weights, model.state_dict()
    known = old["embedding.weight"].shape[0]
    assert torch.equal(now["embedding.weight"][:known], old["embedding.weight"])
    assert torch.equal(now["embedding.weight"][known:], fresh["embedding.weight"][known:])  # the new words' own
    rows = [labels.index(label) for label in start.labels]
    assert torch.equal(now["head.weight"][rows], old["head.weight"])
    assert torch.equal(now["head.weight"][2], fresh["head.weight"][2])  # weather: a new output row
    recurrent = [name for name in old if name.startswith("encoder.")]
    assert recurrent and all(torch.equal(now[name], old[name]) for name in recurrent)


def test_an_update_records_where_it_started(workspace):
    result = rnnclf(
        "train", "--config", str(workspace / "new.yaml"), "--init", str(workspace / "old"),
        "--set", "data.rehearsal=0.5", "--run-dir", str(workspace / "recorded"), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((workspace / "recorded" / "metrics.json").read_text())
    assert summary["init"]["run"] == str(workspace / "old")
    assert summary["init"]["sha256"] == sha256(workspace / "old" / "model.safetensors")
    assert summary["init"]["labels_added"] == ["weather"]
    assert summary["init"]["words_added"] >= 1  # drizzle
    assert json.loads((workspace / "recorded" / "labels.json").read_text()) == ["money", "sport", "weather"]
    old_config = load_config(workspace / "old" / "config.yaml")
    old_train = len(load_corpus(old_config.data, old_config.train.seed).train)  # its validation texts carved out
    assert summary["rehearsal"]["old_texts"] == old_train
    assert summary["rehearsal"]["old_per_epoch"] == round(0.5 * old_train)


def test_rehearsal_keeps_the_old_labels_and_without_it_they_are_forgotten(workspace):
    assert accuracy(workspace / "old", workspace / "test_old.csv") > 0.95
    forgetting = update(workspace, "alone")
    rehearsed = update(workspace, "rehearsed", "data.rehearsal=300")
    assert accuracy(rehearsed, workspace / "test_new.csv") > 0.95
    assert accuracy(forgetting, workspace / "test_new.csv") > 0.95
    assert accuracy(rehearsed, workspace / "test_old.csv") > 0.95
    assert accuracy(forgetting, workspace / "test_old.csv") < 0.9  # 0.78 here: weather took some of theirs


def test_each_epoch_draws_other_old_texts_and_keeps_every_new_one():
    rehearsal = Rehearsal(new=10, old=100, count=30)
    first, second = rehearsal.rows(0, 1), rehearsal.rows(0, 2)
    assert len(first) == 40 and set(range(10)) <= set(first.tolist())
    assert len(set(first.tolist())) == 40 and first.max() < 110
    assert not np.array_equal(first, second)
    assert np.array_equal(first, rehearsal.rows(0, 1))  # seeded: a resumed epoch draws the same


def test_a_stopped_update_resumes_exactly(workspace):
    def stop_after_first(epoch, score, last):
        raise Stop

    with pytest.raises(Stop):
        update(workspace, "stopped", "data.rehearsal=200", on_epoch=stop_after_first)
    resume(workspace / "stopped", log=lambda line: None)
    whole = update(workspace, "whole", "data.rehearsal=200")
    a, b = load_file(workspace / "stopped" / "model.safetensors"), load_file(whole / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)

    def history(run: Path) -> list[tuple]:  # every epoch's losses: the later epochs' draws of old texts too
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [(row["epoch"], row["train_loss"], row["valid_loss"]) for row in rows]

    assert len(history(whole)) == 4 and history(workspace / "stopped") == history(whole)


def test_new_words_take_pretrained_vectors_and_known_words_keep_their_rows(tmp_path):
    """Frozen embeddings show it after training: every word the earlier run knew keeps its row (random ones too),
    and a new word with a pretrained vector gets that vector."""
    rng = np.random.default_rng(0)
    vectors = {word: rng.normal(size=4).round(4) for word in ("match", "goal", "bank", "drizzle")}
    (tmp_path / "vectors.txt").write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()))
    rows = topic_task(200, seed=3)
    write_csv(tmp_path / "old.csv", [row for row in rows if row[1] != "weather"])
    write_csv(tmp_path / "new.csv", [(t.replace("rain", "drizzle"), label) for t, label in rows if label == "weather"])
    frozen = "embedding: {dim: 4, pretrained: vectors.txt, trainable: false}\nmodel: {encoder: gru, hidden_size: 8}\n"
    settings = frozen + "train: {epochs: 1, batch_size: 16, num_threads: 1}\n"
    (tmp_path / "old.yaml").write_text("data: {train: old.csv}\n" + settings)
    (tmp_path / "new.yaml").write_text("data: {train: new.csv}\n" + settings)
    train(load_config(tmp_path / "old.yaml", [f"output.run_dir={tmp_path / 'old'}"]), log=lambda line: None)
    overrides = [f"output.run_dir={tmp_path / 'new'}", f"model.init={tmp_path / 'old'}", "data.rehearsal=50"]
    train(load_config(tmp_path / "new.yaml", overrides), log=lambda line: None)
    old, new = Predictor.load(tmp_path / "old"), Predictor.load(tmp_path / "new")
    old_rows, new_rows = (p.model.embedding.weight.detach().numpy() for p in (old, new))
    known = old.tokenizer.get_vocab()
    assert all(np.array_equal(new_rows[i], old_rows[i]) for i in known.values())
    drizzle = new.tokenizer.token_to_id("drizzle")
    assert drizzle >= len(known)
    np.testing.assert_allclose(new_rows[drizzle], vectors["drizzle"], rtol=1e-6)


def test_a_training_file_with_rows_appended_is_not_rehearsed_twice_and_its_validation_is_flagged(workspace):
    """The round as users do it: new rows appended to the earlier run's training file. Rehearsal then has nothing
    to mix in that this run lacks; the validation split carved anew holds texts the earlier run trained on: said."""
    appended = workspace / "appended.csv"
    more = [row for row in topic_task(200, seed=5) if row[1] != "weather"]  # new texts of the old labels too
    rows = [tuple(line.rsplit(",", 1)) for line in (workspace / "old.csv").read_text().splitlines()[1:]]
    write_csv(appended, rows + more)
    (workspace / "appended.yaml").write_text("data: {train: appended.csv}\n" + MODEL)
    lines: list[str] = []
    settings = [f"model.init={workspace / 'old'}", f"output.run_dir={workspace / 'appended-rehearsed'}"]
    train(load_config(workspace / "appended.yaml", [*settings, "data.rehearsal=100"]), log=lines.append)
    summary = json.loads((workspace / "appended-rehearsed" / "metrics.json").read_text())
    assert "rehearsal" not in summary and any("nothing to rehearse" in line for line in lines)
    lines.clear()
    settings[1] = f"output.run_dir={workspace / 'appended'}"
    train(load_config(workspace / "appended.yaml", settings), log=lines.append)
    warned = [line for line in lines if "validation texts were training texts of model.init's run" in line]
    assert len(warned) == 1 and int(warned[0].split("warning: ")[1].split()[0]) > 0


def test_rehearsal_reaches_back_through_earlier_updates(workspace):
    """A second update (a fourth label) rehearses the texts of the first update and of the run before it."""
    first = update(workspace, "first-update", "data.rehearsal=300")
    music = [
        (f"the song {w} band" if i % 2 else f"a concert of {w} album", "music") for i, w in enumerate("abcdefghij" * 6)
    ]
    write_csv(workspace / "music.csv", music)
    (workspace / "music.yaml").write_text("data: {train: music.csv}\n" + MODEL)
    settings = [f"model.init={first}", "data.rehearsal=0.9", f"output.run_dir={workspace / 'second-update'}"]
    train(load_config(workspace / "music.yaml", settings), log=lambda line: None)
    summary = json.loads((workspace / "second-update" / "metrics.json").read_text())
    old = load_config(workspace / "old" / "config.yaml")
    earlier = (
        len(load_corpus(old.data, old.train.seed).train)
        + json.loads((first / "metrics.json").read_text())["sizes"]["train"]
        - 300
    )
    assert summary["rehearsal"]["old_texts"] == earlier  # both runs' training texts (the first's own, not re-drawn)
    assert json.loads((workspace / "second-update" / "labels.json").read_text()) == [
        "money",
        "music",
        "sport",
        "weather",
    ]
    assert accuracy(workspace / "second-update", workspace / "test_old.csv") > 0.9
    assert accuracy(workspace / "second-update", workspace / "test_new.csv") > 0.9
