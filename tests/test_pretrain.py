"""rnnclf pretrain (a recurrent language model) and model.init (a classifier fine-tuned from it)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import order_task, write_csv
from safetensors.torch import load_file

from rnnclf.config.loading import load_config
from rnnclf.models.language_model import LanguageModel, detach, direction_streams, windows
from rnnclf.recipes.classify import train
from rnnclf.recipes.pretrain import pretrain

SMALL = {"embedding_dim": 16, "encoder": "gru", "hidden_size": 24, "bidirectional": True}
LM_CONFIG = (
    "data: {train: train.csv, test: test.csv, max_length: null}\n"
    "embedding: {dim: 16, dropout: 0.1, word_dropout: 0.05}\n"
    "model: {encoder: gru, hidden_size: 32, weight_dropout: 0.2, variational_dropout: true, head_dropout: 0.1}\n"
    "train: {epochs: 3, batch_size: 16, lr: 0.01, num_threads: 1}\n"
    "pretrain: {bptt: 4}\n"
)
CLASSIFIER = (
    "data: {train: train.csv, test: test.csv}\n"
    "embedding: {dim: 16}\n"
    "model: {encoder: gru, hidden_size: 32, init: lm}\n"
    "train: {epochs: 2, batch_size: 16, lr: 0.005, num_threads: 1}\n"
)


def cycle_texts(n: int, seed: int) -> list[tuple[str, str]]:
    """Texts walking round a cycle of ten words from a random start: each next (and previous) word is certain."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(10)]
    rows = []
    for _ in range(n):
        start, length = rng.randrange(10), rng.randint(3, 30)
        rows.append((" ".join(words[(start + i) % 10] for i in range(length)), rng.choice(["a", "b"])))
    return rows


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A language model on the order task's texts, the `lm` run every test here may start from."""
    folder = tmp_path_factory.mktemp("pretrain")
    write_csv(folder / "train.csv", order_task(800, seed=11))
    write_csv(folder / "test.csv", order_task(200, seed=12))
    (folder / "lm.yaml").write_text(LM_CONFIG)
    (folder / "classifier.yaml").write_text(CLASSIFIER)
    assert cli(folder, "pretrain", "--config", "lm.yaml", "--run-dir", "lm").returncode == 0
    return folder


def cli(folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rnnclf", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)


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
    records = [json.loads(line) for line in (tmp_path / "lm" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["valid_perplexity"] < records[0]["valid_perplexity"]


def test_windows_with_the_state_carried_equal_one_pass_over_the_whole_text():
    """Truncated backpropagation cuts gradients, not the forward pass: the loss in windows of 3 tokens with the
    state carried is the loss of reading each text at once."""
    torch.manual_seed(0)
    model = LanguageModel(40, **SMALL).eval()
    ids = torch.randint(2, 40, (4, 17))
    lengths = torch.tensor([17, 12, 5, 2])
    ids[torch.arange(17)[None, :] >= lengths[:, None]] = 0
    streams = direction_streams(ids, lengths, True)

    @torch.no_grad()
    def loss(bptt: int) -> float:
        total, count, states = 0.0, 0, [None, None]
        for inputs, targets in windows(streams, bptt):
            part, n, states = model(inputs, targets, states)
            states = detach(states)
            total, count = total + float(part), count + int(n)
        assert count == 2 * int((lengths - 1).sum())  # every next token once per direction, padding never
        return total / count

    assert loss(3) == pytest.approx(loss(100), rel=1e-5)


def test_the_run_directory_and_a_classifier_started_from_it(folder):
    lm = folder / "lm"
    for name in ("config.yaml", "tokenizer.json", "model.safetensors", "metrics.jsonl", "metrics.json", "curves.png"):
        assert (lm / name).exists(), name
    info = json.loads((lm / "language_model.json").read_text())
    assert info["directions"] == 2 and info["texts"] == {"training split": 720}  # never the test split's texts
    records = [json.loads(line) for line in (lm / "metrics.jsonl").read_text().splitlines()]
    assert {"train_perplexity", "valid_perplexity", "tokens_per_s", "epoch_seconds"} <= set(records[0])
    assert json.loads((lm / "metrics.json").read_text())["valid_perplexity"] < 20  # the vocabulary has 25 words

    result = cli(folder, "train", "--config", "classifier.yaml", "--run-dir", "fine", "--set", "train.epochs=1")
    assert result.returncode == 0, result.stderr
    assert f"embedding and recurrent layers from the language model {folder / 'lm'}" in result.stderr
    assert (folder / "fine" / "tokenizer.json").read_text() != ""
    # predict and eval see an ordinary classifier
    assert cli(folder, "predict", "fine", "not good the film").returncode == 0
    assert cli(folder, "eval", "fine").returncode == 0
    exported = cli(folder, "export", "fine")  # the AWD regularisers are training-only: an ordinary graph
    assert exported.returncode == 0, exported.stderr


def test_two_processes_pretrain_one_language_model(folder):
    """--nproc 2 (torchrun, gloo): every process takes the same number of windows, and rank 0 writes the run."""
    args = ("pretrain", "--config", "lm.yaml", "--run-dir", "lm-ddp", "--nproc", "2", "--set", "train.epochs=2")
    result = cli(folder, *args, "--set", "train.scheduler=linear")
    assert result.returncode == 0, result.stderr
    env = json.loads((folder / "lm-ddp" / "env.json").read_text())
    assert env["processes"] == 2
    assert json.loads((folder / "lm-ddp" / "metrics.json").read_text())["valid_perplexity"] < 25
    # the schedule counts the steps every process takes: the rate reaches 0 exactly at the end, not before
    records = [json.loads(line) for line in (folder / "lm-ddp" / "metrics.jsonl").read_text().splitlines()]
    first, total = records[0]["step"], records[1]["step"]
    assert records[0]["lr"] == pytest.approx(0.01 * (1 - first / total)) and records[1]["lr"] == 0.0


def test_the_classifier_starts_from_the_language_model_weights(folder):
    """Before any step, the classifier's embedding and recurrent weights are the language model's best ones."""
    config = load_config(folder / "classifier.yaml", ["model.init=" + str(folder / "lm"), "train.lr=1e-30"])
    config = config.model_copy(update={"output": config.output.model_copy(update={"run_dir": folder / "tiny-lr"})})
    train(config, log=lambda message: None)
    language_model, classifier = (
        load_file(folder / "lm" / "model.safetensors"),
        load_file(folder / "tiny-lr" / "model.safetensors"),
    )
    shared = [name for name in classifier if not name.startswith("head.")]
    assert shared and all(name in language_model for name in shared)
    assert all(torch.allclose(classifier[name], language_model[name], atol=1e-6) for name in shared)


def test_gradual_unfreezing_trains_the_head_alone_first(folder):
    """With gradual_unfreezing 1 the first epoch leaves the embedding and recurrent layers as the language model
    had them; with lr_decay the recurrent layer learns at lr / 2.6."""
    config = load_config(
        folder / "classifier.yaml",
        [f"model.init={folder / 'lm'}", "train.epochs=1", "train.gradual_unfreezing=1", "train.lr_decay=2.6"]
        + ["train.seed=1"],
    )
    config = config.model_copy(update={"output": config.output.model_copy(update={"run_dir": folder / "frozen"})})
    lines: list[str] = []
    train(config, log=lines.append)
    # both are said: layers that never thaw in so few epochs, and validation texts the language model has read
    assert any("trains only the top 1 of 3 layer groups" in line for line in lines)
    assert any("some of this run's validation texts" in line for line in lines)
    language_model, classifier = (
        load_file(folder / "lm" / "model.safetensors"),
        load_file(folder / "frozen" / "model.safetensors"),
    )
    assert all(torch.equal(classifier[n], language_model[n]) for n in classifier if not n.startswith("head."))


def test_parameter_groups_learn_slower_downwards_and_unfreeze_in_turn():
    from rnnclf.models.classifier import RNNClassifier
    from rnnclf.models.layer_groups import frozen_parameters, parameter_groups

    model = RNNClassifier(50, 3, embedding_dim=8, encoder="lstm", hidden_size=8, num_layers=2, bidirectional=True)
    groups = parameter_groups(model, 0.01, 2.0)
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.005, 0.0025, 0.00125])  # head, layer 2, 1, embedding
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    head = set(map(id, model.head.parameters()))
    assert head.isdisjoint(map(id, frozen_parameters(model, 1, 1)))
    assert len(frozen_parameters(model, 1, 1)) == len(list(model.parameters())) - len(head)
    assert frozen_parameters(model, 4, 1) == [] and frozen_parameters(model, 1, 0) == []
    assert id(model.embedding.weight) in set(map(id, frozen_parameters(model, 3, 1)))  # the last to thaw


def test_slanted_triangular_schedule():
    from rnnclf.config.schema import TrainConfig
    from rnnclf.training.optim import build_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, TrainConfig(scheduler="slanted", warmup_ratio=0.1), 100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = int(np.argmax(rates))
    assert peak == 9 and rates[peak] == pytest.approx(1.0)
    assert rates[0] == pytest.approx((1 + 0.1 * 31) / 32)  # rises from about lr / 32
    assert rates[-1] > optimizer.param_groups[0]["lr"] == pytest.approx(1 / 32)  # and falls back to it


def test_unlabelled_texts_join_the_language_model_and_its_vocabulary(folder, tmp_path):
    (tmp_path / "more.txt").write_text("zebra crossing\n\nzebra stripes\n")
    write_jsonl = tmp_path / "more.jsonl"
    write_jsonl.write_text(json.dumps({"text": "a quokka smiles"}) + "\n")
    config = tmp_path / "lm.yaml"
    base = LM_CONFIG.replace("train.csv, test: test.csv", f"{folder / 'train.csv'}")
    config.write_text(
        base.replace("max_length: null}", "max_length: null, unlabelled: [more.txt, more.jsonl]}").replace(
            "epochs: 3", "epochs: 1"
        )
    )
    result = cli(tmp_path, "pretrain", "--config", "lm.yaml", "--run-dir", "lm")
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "lm" / "language_model.json").read_text())
    assert list(info["texts"].values()) == [720, 2, 1]
    vocabulary = json.loads((tmp_path / "lm" / "tokenizer.json").read_text())["model"]["vocab"]
    assert "zebra" in vocabulary and "quokka" in vocabulary


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_a_stopped_language_model_resumes_exactly(folder, tmp_path, sig, code):
    """SIGINT saves the state and stops; SIGKILL stops at once, after a save (train.save_every). Either way
    --resume then ends where the run uninterrupted ends."""
    (tmp_path / "lm.yaml").write_text(
        LM_CONFIG.replace("train.csv, test: test.csv", str(folder / "train.csv")).replace(
            "num_threads: 1", "num_threads: 1, save_every: 5"
        )
    )
    assert cli(tmp_path, "pretrain", "--config", "lm.yaml", "--run-dir", "whole").returncode == 0
    command = [sys.executable, "-m", "rnnclf", "pretrain", "--config", "lm.yaml", "--run-dir", "stopped"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "stopped" / "state" / "state.safetensors"
    deadline = time.time() + 300
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert sig == signal.SIGKILL or "rnnclf pretrain --resume stopped" in stderr
    assert not (tmp_path / "stopped" / "metrics.json").exists()
    result = cli(tmp_path, "pretrain", "--resume", "stopped")
    assert result.returncode == 0, result.stderr
    whole, stopped = (
        load_file(tmp_path / "whole" / "model.safetensors"),
        load_file(tmp_path / "stopped" / "model.safetensors"),
    )
    assert all(torch.equal(whole[name], stopped[name]) for name in whole)
    lines = [(tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("whole", "stopped")]
    valid = [[json.loads(line)["valid_loss"] for line in run] for run in lines]
    assert valid[0] == valid[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("hidden_size: 32", "pretrained with model.hidden_size 32, and this config has 48"),
        ("encoder: gru", "pretrained with model.encoder gru, and this config has lstm"),
        ("dim: 16", "pretrained with embedding.dim 16, and this config has 8"),
    ],
)
def test_a_language_model_that_does_not_fit_is_refused_in_one_line(folder, change, message):
    replacement = {"hidden_size: 32": "hidden_size: 48", "encoder: gru": "encoder: lstm", "dim: 16": "dim: 8"}
    (folder / "misfit.yaml").write_text(CLASSIFIER.replace(change, replacement[change]))
    result = cli(folder, "train", "--config", "misfit.yaml", "--run-dir", "misfit")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"rnnclf: error: model.init: {folder / 'lm'}: {message}"]
    assert not (folder / "misfit").exists()


def test_a_finished_language_model_resumed_says_it_is_complete(folder):
    from conftest import digest

    before = digest(folder / "lm")
    result = cli(folder, "pretrain", "--resume", "lm")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "lm: the run is complete" in lines[0] and "nothing to resume" in lines[0]
    assert digest(folder / "lm") == before


def test_pretrain_writes_tensorboard_events_and_records_thread_changes(folder, tmp_path, monkeypatch):
    """One training loop: what train does, pretrain does too. Each thread change the governor makes (here forced by
    a fake load from other processes) is in env.json, and output.tensorboard writes event files."""
    pytest.importorskip("tensorboard")
    from rnnclf.device import cores, threads

    loads = iter([0.0] + [1.2, 0.0, 0.0] * 1000)  # another job takes a core, then leaves, again and again
    monkeypatch.setattr(threads.OtherLoad, "measure", lambda self: next(loads))
    monkeypatch.setattr(threads.ThreadGovernor, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr(cores, "available_cores", lambda: 2)  # two cores to give and take, on any machine
    config = tmp_path / "lm.yaml"
    config.write_text(LM_CONFIG.replace("train.csv, test: test.csv", str(folder / "train.csv")))
    overrides = ["train.num_threads=null", "output.tensorboard=true", f"output.run_dir={tmp_path / 'lm'}"]
    pretrain(load_config(config, overrides), log=lambda line: None)
    env = json.loads((tmp_path / "lm" / "env.json").read_text())
    assert len(env["thread_changes"]) >= 2 and {c["threads"] for c in env["thread_changes"]} >= {1}
    events = list((tmp_path / "lm" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and max(event.stat().st_size for event in events) > 100
