"""`rnnclf pretrain` end to end (a recurrent language model) and the classifiers `rnnclf train` starts from it
(model.init): the run directory, two processes, unlabelled texts, stopping and resuming, one-line mistakes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers.data import digest
from helpers.mistakes import check_mistake, pretrain_args
from helpers.runs import CLASSIFIER_FROM_LM_CONFIG, LM_CONFIG, language_model_perplexities


def cli(lm_folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rnnclf", *args]
    return subprocess.run(command, cwd=lm_folder, capture_output=True, text=True, timeout=timeout)


def test_the_run_directory_and_a_classifier_started_from_it(lm_folder):
    lm = lm_folder / "lm"
    for name in ("config.yaml", "tokenizer.json", "model.safetensors", "metrics.jsonl", "metrics.json", "curves.png"):
        assert (lm / name).exists(), name
    info = json.loads((lm / "language_model.json").read_text())
    assert info["directions"] == 2 and info["texts"] == {"training split": 720}  # never the test split's texts
    records = [json.loads(line) for line in (lm / "metrics.jsonl").read_text().splitlines()]
    assert {"train_perplexity", "valid_perplexity", "tokens_per_s", "epoch_seconds"} <= set(records[0])
    reported = json.loads((lm / "metrics.json").read_text())["valid_perplexity"]
    assert reported < 20  # the vocabulary has 25 words
    # the perplexity reported is the saved model's, recomputed here; and it learnt more than word frequencies
    recomputed, unigram = language_model_perplexities(lm)
    assert reported == pytest.approx(recomputed, rel=1e-4)
    assert reported < 0.9 * unigram, (reported, unigram)  # measured 13.5 against 16.1

    result = cli(lm_folder, "train", "--config", "classifier.yaml", "--run-dir", "fine", "--set", "train.epochs=1")
    assert result.returncode == 0, result.stderr
    assert f"embedding and recurrent layers from the language model {lm_folder / 'lm'}" in result.stderr
    assert (lm_folder / "fine" / "tokenizer.json").read_text() != ""
    # predict and eval see an ordinary classifier
    assert cli(lm_folder, "predict", "fine", "not good the film").returncode == 0
    assert cli(lm_folder, "eval", "fine").returncode == 0
    exported = cli(lm_folder, "export", "fine")  # the AWD regularisers are training-only: an ordinary graph
    assert exported.returncode == 0, exported.stderr


@pytest.mark.slow
def test_two_processes_pretrain_one_language_model(lm_folder):
    """--nproc 2 (torchrun, gloo): every process takes the same number of windows, and rank 0 writes the run."""
    args = ("pretrain", "--config", "lm.yaml", "--run-dir", "lm-ddp", "--nproc", "2", "--set", "train.epochs=2")
    result = cli(lm_folder, *args, "--set", "train.scheduler=linear")
    assert result.returncode == 0, result.stderr
    env = json.loads((lm_folder / "lm-ddp" / "env.json").read_text())
    assert env["processes"] == 2
    reported = json.loads((lm_folder / "lm-ddp" / "metrics.json").read_text())["valid_perplexity"]
    assert reported < 25
    recomputed, unigram = language_model_perplexities(lm_folder / "lm-ddp")
    assert reported == pytest.approx(recomputed, rel=1e-4) and reported < unigram  # measured 14.9 against 16.1
    # the schedule counts the steps every process takes: the rate reaches 0 exactly at the end, not before
    records = [json.loads(line) for line in (lm_folder / "lm-ddp" / "metrics.jsonl").read_text().splitlines()]
    first, total = records[0]["step"], records[1]["step"]
    assert records[0]["lr"] == pytest.approx(0.01 * (1 - first / total)) and records[1]["lr"] == 0.0


def test_unlabelled_texts_join_the_language_model_and_its_vocabulary(lm_folder, tmp_path):
    (tmp_path / "more.txt").write_text("zebra crossing\n\nzebra stripes\n")
    write_jsonl = tmp_path / "more.jsonl"
    write_jsonl.write_text(json.dumps({"text": "a quokka smiles"}) + "\n")
    config = tmp_path / "lm.yaml"
    base = LM_CONFIG.replace("train.csv, test: test.csv", f"{lm_folder / 'train.csv'}")
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


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_a_stopped_language_model_resumes_exactly(lm_folder, tmp_path, sig, code):
    """SIGINT saves the state and stops; SIGKILL stops at once, after a save (train.save_every). Either way
    --resume then ends where the run uninterrupted ends."""
    (tmp_path / "lm.yaml").write_text(
        LM_CONFIG.replace("train.csv, test: test.csv", str(lm_folder / "train.csv")).replace(
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
def test_a_language_model_that_does_not_fit_is_refused_in_one_line(lm_folder, change, message):
    replacement = {"hidden_size: 32": "hidden_size: 48", "encoder: gru": "encoder: lstm", "dim: 16": "dim: 8"}
    (lm_folder / "misfit.yaml").write_text(CLASSIFIER_FROM_LM_CONFIG.replace(change, replacement[change]))
    result = cli(lm_folder, "train", "--config", "misfit.yaml", "--run-dir", "misfit")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"rnnclf: error: model.init: {lm_folder / 'lm'}: {message}"]
    assert not (lm_folder / "misfit").exists()


def test_a_finished_language_model_resumed_says_it_is_complete(lm_folder):
    before = digest(lm_folder / "lm")
    result = cli(lm_folder, "pretrain", "--resume", "lm")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "lm: the run is complete" in lines[0] and "nothing to resume" in lines[0]
    assert digest(lm_folder / "lm") == before


CASES = {
    "pretrain without config": (lambda ws: ["pretrain"], 2, "give --config FILE"),
    "pretrain two bidirectional layers": (
        lambda ws: pretrain_args(ws, "--set", "model.num_layers=2"),
        2,
        "pretrain model.num_layers 1 or model.bidirectional false",
    ),
    "pretrain bag": (lambda ws: pretrain_args(ws, "--set", "model.encoder=bag"), 2, "has no recurrent layers"),
    "pretrain missing unlabelled": (
        lambda ws: pretrain_args(ws, "--set", "data.unlabelled=[nope.txt]"),
        2,
        "nope.txt: file not found",
    ),
    "pretrain unlabelled without text": (
        lambda ws: pretrain_args(ws, "--set", "data.unlabelled=[no_text.jsonl]"),
        2,
        "no_text.jsonl line 1: no text field 'text' (data.text_field)",
    ),
    "pretrain unlabelled not utf-8": (
        lambda ws: pretrain_args(ws, "--set", "data.unlabelled=[texts_latin1.txt]"),
        2,
        "texts_latin1.txt: not UTF-8",
    ),
    "pretrain with lr_decay": (
        lambda ws: pretrain_args(ws, "--set", "train.lr_decay=2.6"),
        2,
        "train.lr_decay is for fine-tuning a classifier (model.init)",
    ),
    "pretrain unlabelled of unknown kind": (
        lambda ws: pretrain_args(ws, "--set", "data.unlabelled=[data.xlsx]"),
        2,
        "data.xlsx: use .txt (one text per line), .jsonl, .csv or .tsv",
    ),
    "pretrain resume a classifier": (
        lambda ws: ["pretrain", "--resume", str(ws / "run")],
        2,
        "not an rnnclf pretrain run directory",
    ),
    "pretrain resume missing": (lambda ws: ["pretrain", "--resume", str(ws / "nope")], 2, "run directory not found"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_matrix(mistakes, case, capsys, monkeypatch):
    check_mistake(mistakes, CASES[case], capsys, monkeypatch)
