"""The bad-input matrix: each mistake gets one clear line naming the file, key or row, exit code 2,
no traceback, and leaves what existed before untouched. Runs the real entry point in-process."""

import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest
from conftest import digest, multi_label_task, order_task, write_csv, write_jsonl

from rnnclf.cli import main
from rnnclf.config.loading import load_config
from rnnclf.recipes.classify import train
from rnnclf.recipes.pretrain import pretrain

GOOD = "data: {train: train.csv}\nembedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\ntrain: {epochs: 1}\n"
ML_DATA = "data: {train: %s, multi_label: true, label_field: labels}\n"
ML = ML_DATA % "ml_train.jsonl" + "embedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\ntrain: {epochs: 1}\n"


class Payload:
    """Unpickling this would create a file: proof that no pickle is ever executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    write_csv(folder / "train.csv", order_task(300, seed=1))
    write_csv(folder / "one_class.csv", [("a b", "x"), ("c d", "x")])
    write_csv(folder / "unseen.csv", [("not good", "pos"), ("a b", "maybe")])
    write_csv(folder / "empty_text.csv", [("a b", "pos"), ("", "neg")])
    write_csv(folder / "no_label.csv", [("a b", "pos"), ("c d", "")])
    write_csv(folder / "body.csv", [("a b", "pos")], header=("body", "label"))
    write_csv(folder / "no_label_column.csv", [("a b", "pos")], header=("text", "class"))
    (folder / "empty.csv").write_bytes(b"")
    (folder / "header_only.csv").write_text("text,label\n")
    (folder / "latin1.csv").write_bytes(b"text,label\ncaf\xe9 ok,pos\nbad,neg\n")
    (folder / "extra_fields.csv").write_text("text,label\na,pos,oops\n")
    (folder / "unclosed.csv").write_text('text,label\ngood film,pos\n"good movie,pos\nbad film,neg\n')
    (folder / "bad.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": \n')
    (folder / "list.jsonl").write_text('["a", "x"]\n')
    (folder / "data.xlsx").write_text("nope")
    (folder / "dir.csv").mkdir()
    (folder / "vectors.txt").write_text("the 1 2 3\n")
    (folder / "latin1.yaml").write_bytes(b"data: {train: caf\xe9.csv}\n")
    (folder / "texts_latin1.txt").write_bytes(b"caf\xe9\n")
    rows = order_task(300, seed=2)
    crlf = "text,label\r\n" + "".join(f"{t},{lab}\r\n" for t, lab in rows)
    (folder / "crlf_bom.csv").write_bytes("\ufeff".encode() + crlf.encode())
    (folder / "quoted.csv").write_text(
        'text,label\n"not good, really\nnot at all",neg\n' + "".join(f"{t},{lab}\n" for t, lab in rows)
    )
    (folder / "numbers.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": int(lab == "pos")}) + "\n" for t, lab in rows)
    )
    (folder / "ml_string.jsonl").write_text('{"text": "a b", "labels": ["x"]}\n{"text": "c d", "labels": "x"}\n')
    (folder / "ml_empty_label.jsonl").write_text('{"text": "a b", "labels": ["x", ""]}\n')
    (folder / "ml_list_single.jsonl").write_text('{"text": "a b", "label": "x"}\n{"text": "c", "label": ["x", "y"]}\n')
    write_csv(folder / "ml_empty_label.csv", [("a b", "x|y"), ("c d", "x||y")], header=("text", "labels"))
    write_jsonl(folder / "ml_train.jsonl", multi_label_task(200, seed=3))
    write_jsonl(folder / "ml_unseen.jsonl", [("a goal", ["sport"]), ("a comet", ["space"])])
    config = folder / "good.yaml"
    config.write_text(GOOD)
    train(load_config(config, [f"output.run_dir={folder / 'run'}"]), log=lambda m: None)
    (folder / "ml.yaml").write_text(ML)
    train(load_config(folder / "ml.yaml", [f"output.run_dir={folder / 'ml_run'}"]), log=lambda m: None)
    pretrain(load_config(config, [f"output.run_dir={folder / 'lm'}"]), log=lambda m: None)
    shutil.copytree(folder / "lm", folder / "lm_unfinished")
    (folder / "lm_unfinished" / "metrics.json").unlink()
    (folder / "no_text.jsonl").write_text('{"body": "a b"}\n')
    return folder


def config(ws: Path, text: str) -> str:
    path = ws / "case.yaml"
    path.write_text(text)
    return str(path)


def broken_run(ws: Path, damage, name: str = "run") -> str:
    """A copy of a trained run, damaged by `damage(run_dir)`."""
    target = ws / "damaged"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ws / name, target)
    damage(target)
    return str(target)


def _bad_threshold(run: Path) -> None:
    saved = json.loads((run / "thresholds.json").read_text())
    saved["thresholds"]["money"] = 7
    (run / "thresholds.json").write_text(json.dumps(saved))


def new_run(ws: Path) -> str:
    target = ws / "fresh"
    shutil.rmtree(target, ignore_errors=True)
    return str(target)


def train_args(ws, text, *extra):
    return ["train", "--config", config(ws, text), "--run-dir", new_run(ws), *extra]


def pretrain_args(ws: Path, *extra: str) -> list[str]:
    return ["pretrain", "--config", config(ws, GOOD), "--run-dir", new_run(ws), *extra]


def init_args(ws: Path, run: str, *extra: str) -> list[str]:
    return train_args(ws, GOOD, "--set", f"model.init={ws / run}", *extra)


def tune_args(ws: Path, space: str | None, *extra: str) -> list[str]:
    """rnnclf tune on the good config, into a folder that does not exist yet (and must not after the mistake)."""
    out = ws / "tune-new"
    shutil.rmtree(out, ignore_errors=True)
    args = ["tune", "--config", config(ws, GOOD), "--out", str(out), "--trials", "2", *extra]
    if space is not None:
        (ws / "space.yaml").write_text(space)
        args += ["--space", str(ws / "space.yaml")]
    return args


def set_env_version(run: Path) -> None:
    env = json.loads((run / "env.json").read_text())
    env["format_version"] = 99
    (run / "env.json").write_text(json.dumps(env))


def plant_pickle(run: Path) -> None:
    (run / "model.safetensors").write_bytes(pickle.dumps(Payload(run.parent / "pwned")))


CASES = {
    # config
    "malformed yaml": (lambda ws: train_args(ws, "data: {train: train.csv\n"), 2, "invalid YAML"),
    "unknown section": (lambda ws: train_args(ws, GOOD + "optimiser: {lr: 1}\n"), 2, "unknown key 'optimiser'"),
    "misspelled key": (lambda ws: train_args(ws, GOOD + "output: {run_dri: x}\n"), 2, "did you mean 'output.run_dir'"),
    "wrong type": (
        lambda ws: train_args(ws, GOOD, "--set", "train.epochs=ten"),
        2,
        "train.epochs: Input should be a valid integer",
    ),
    "negative size": (lambda ws: train_args(ws, GOOD, "--set", "model.hidden_size=-5"), 2, "model.hidden_size"),
    "zero batch": (lambda ws: train_args(ws, GOOD, "--set", "train.batch_size=0"), 2, "train.batch_size"),
    "dropout above 1": (lambda ws: train_args(ws, GOOD, "--set", "model.dropout=1.5"), 2, "model.dropout"),
    "unknown encoder": (
        lambda ws: train_args(ws, GOOD, "--set", "model.encoder=transformer"),
        2,
        "model.encoder: Input should be",
    ),
    "empty config": (lambda ws: train_args(ws, ""), 2, "config file is empty"),
    "config is a list": (lambda ws: train_args(ws, "- a\n- b\n"), 2, "expected a mapping"),
    "config missing": (lambda ws: ["train", "--config", str(ws / "nope.yaml")], 2, "nope.yaml: config file not found"),
    "config is a directory": (lambda ws: ["train", "--config", str(ws)], 2, "is a directory"),
    "config not utf-8": (lambda ws: ["train", "--config", str(ws / "latin1.yaml")], 2, "latin1.yaml: not UTF-8"),
    "dataset and train": (lambda ws: train_args(ws, "data: {dataset: r8, train: train.csv}\n"), 2, "not both"),
    "dropout with one layer": (
        lambda ws: train_args(ws, GOOD, "--set", "model.dropout=0.3"),
        2,
        "model.dropout acts between recurrent layers",
    ),
    "dropout with bag": (
        lambda ws: train_args(
            ws, GOOD, "--set", "model.encoder=bag", "--set", "model.num_layers=2", "--set", "model.dropout=0.3"
        ),
        2,
        "model.dropout acts between recurrent layers",
    ),
    "warmup without warm-up schedule": (
        lambda ws: train_args(ws, GOOD, "--set", "train.warmup_ratio=0.1", "--set", "train.scheduler=plateau"),
        2,
        "train.warmup_ratio needs a schedule with warm-up",
    ),
    "text field with a dataset": (
        lambda ws: train_args(ws, "data: {dataset: r8, text_field: body}\n"),
        2,
        "data.text_field does nothing with data.dataset",
    ),
    "test file with a dataset": (
        lambda ws: train_args(ws, "data: {dataset: r8, test: train.csv}\n"),
        2,
        "data.test does nothing with data.dataset",
    ),
    "no data source": (lambda ws: train_args(ws, "data: {text_field: t}\n"), 2, "set either data.dataset"),
    "unknown corpus": (lambda ws: train_args(ws, "data: {dataset: r88}\n"), 2, "r88"),
    "vectors missing": (
        lambda ws: train_args(ws, GOOD + "embedding: {dim: 3, pretrained: none.txt}\n"),
        2,
        "none.txt: pretrained vectors file not found",
    ),
    "vectors unknown name": (
        lambda ws: train_args(ws, GOOD + "embedding: {dim: 3, pretrained: glove-huge}\n"),
        2,
        "neither a file nor a named set",
    ),
    "vectors dim mismatch": (
        lambda ws: train_args(ws, GOOD.replace("embedding: {dim: 8}", "embedding: {dim: 8, pretrained: vectors.txt}")),
        2,
        "embedding.dim is 8 but",
    ),
    "class weight label": (
        lambda ws: train_args(ws, GOOD, "--set", "train.class_weights={maybe: 2}"),
        2,
        "label 'maybe' is not in the training data",
    ),
    "bad --set": (lambda ws: train_args(ws, GOOD, "--set", "epochs"), 2, "--set epochs: expected section.key=value"),
    "--set unknown key": (lambda ws: train_args(ws, GOOD, "--set", "train.epoch=3"), 2, "did you mean 'train.epochs'"),
    "cuda without cuda": (lambda ws: train_args(ws, GOOD, "--device", "cuda"), 2, "torch sees no CUDA device"),
    # data
    "train missing": (lambda ws: train_args(ws, "data: {train: none.csv}\n"), 2, "none.csv: file not found"),
    "train is a directory": (lambda ws: train_args(ws, "data: {train: dir.csv}\n"), 2, "dir.csv: is a directory"),
    "empty file": (lambda ws: train_args(ws, "data: {train: empty.csv}\n"), 2, "empty.csv: file is empty"),
    "header only": (
        lambda ws: train_args(ws, "data: {train: header_only.csv}\n"),
        2,
        "header_only.csv: no rows of data",
    ),
    "no text column": (lambda ws: train_args(ws, "data: {train: body.csv}\n"), 2, "body.csv: no column 'text'"),
    "no label column": (lambda ws: train_args(ws, "data: {train: no_label_column.csv}\n"), 2, "no column 'label'"),
    "empty text": (
        lambda ws: train_args(ws, "data: {train: empty_text.csv}\n"),
        2,
        "empty_text.csv: line 3: empty text",
    ),
    "missing label": (
        lambda ws: train_args(ws, "data: {train: no_label.csv}\n"),
        2,
        "no_label.csv: line 3: missing label",
    ),
    "non-utf-8 data": (lambda ws: train_args(ws, "data: {train: latin1.csv}\n"), 2, "latin1.csv: line 2: not UTF-8"),
    "one class": (lambda ws: train_args(ws, "data: {train: one_class.csv}\n"), 2, "one_class.csv: only one class"),
    "unseen test label": (
        lambda ws: train_args(ws, "data: {train: train.csv, test: unseen.csv}\n"),
        2,
        "unseen.csv: line 3: label 'maybe'",
    ),
    "invalid jsonl": (lambda ws: train_args(ws, "data: {train: bad.jsonl}\n"), 2, "bad.jsonl: line 2: invalid JSON"),
    "jsonl not objects": (
        lambda ws: train_args(ws, "data: {train: list.jsonl}\n"),
        2,
        "list.jsonl: line 1: expected a JSON object",
    ),
    "unknown extension": (
        lambda ws: train_args(ws, "data: {train: data.xlsx}\n"),
        2,
        "data.xlsx: cannot tell the format",
    ),
    "extra csv fields": (
        lambda ws: train_args(ws, "data: {train: extra_fields.csv}\n"),
        2,
        "extra_fields.csv: line 2: 3 fields",
    ),
    "unclosed csv quote": (
        lambda ws: train_args(ws, "data: {train: unclosed.csv}\n"),
        2,
        "unclosed.csv: a quoted field after line 2 runs to the end of the file (an unclosed quote?)",
    ),
    "crlf and bom work": (lambda ws: train_args(ws, GOOD.replace("train.csv", "crlf_bom.csv")), 0, ""),
    "quotes and newlines work": (lambda ws: train_args(ws, GOOD.replace("train.csv", "quoted.csv")), 0, ""),
    "numeric labels work": (lambda ws: train_args(ws, GOOD.replace("train.csv", "numbers.jsonl")), 0, ""),
    # command line and run directories
    "train without config": (lambda ws: ["train"], 2, "give --config FILE"),
    "resume with config": (
        lambda ws: ["train", "--resume", str(ws / "run"), "--config", "x.yaml"],
        2,
        "do not combine",
    ),
    "resume a missing run": (lambda ws: ["train", "--resume", str(ws / "nope")], 2, "run directory not found"),
    "existing run directory": (
        lambda ws: ["train", "--config", str(ws / "good.yaml"), "--run-dir", str(ws / "run")],
        2,
        "run directory already exists",
    ),
    "unknown command": (lambda ws: ["trian"], 2, "No such command 'trian'"),
    "unknown option": (lambda ws: ["eval", str(ws / "run"), "--splitt", "test"], 2, "No such option"),
    "eval missing run": (lambda ws: ["eval", str(ws / "nope")], 2, "run directory not found"),
    "eval file not run": (lambda ws: ["eval", str(ws / "train.csv")], 2, "not a directory"),
    "eval data and split": (lambda ws: ["eval", str(ws / "run"), "--data", "x.csv", "--split", "test"], 2, "not both"),
    "eval unseen label": (
        lambda ws: ["eval", str(ws / "run"), "--data", str(ws / "unseen.csv")],
        2,
        "line 3: label 'maybe'",
    ),
    "eval no test split": (lambda ws: ["eval", str(ws / "run"), "--split", "test"], 2, "no test data"),
    "incompatible version": (lambda ws: ["eval", broken_run(ws, set_env_version)], 2, "format 99"),
    "truncated weights": (
        lambda ws: [
            "eval",
            broken_run(
                ws, lambda r: (r / "model.safetensors").write_bytes((r / "model.safetensors").read_bytes()[:300])
            ),
        ],
        2,
        "damaged or truncated",
    ),
    "planted pickle": (lambda ws: ["predict", broken_run(ws, plant_pickle), "good"], 2, "not a valid safetensors file"),
    "missing labels.json": (
        lambda ws: ["predict", broken_run(ws, lambda r: (r / "labels.json").unlink()), "good"],
        2,
        "no labels.json",
    ),
    "broken labels.json": (
        lambda ws: ["predict", broken_run(ws, lambda r: (r / "labels.json").write_text("{")), "good"],
        2,
        "labels.json: not valid JSON",
    ),
    # predict
    "predict nothing": (lambda ws: ["predict", str(ws / "run")], 2, "no texts to classify"),
    "predict empty text": (lambda ws: ["predict", str(ws / "run"), "fine", " "], 2, "text 2: empty text"),
    "predict input missing": (
        lambda ws: ["predict", str(ws / "run"), "--input", str(ws / "none.txt")],
        2,
        "none.txt: file not found",
    ),
    "predict input directory": (
        lambda ws: ["predict", str(ws / "run"), "--input", str(ws / "dir.csv")],
        2,
        "is a directory",
    ),
    "predict input not utf-8": (
        lambda ws: ["predict", str(ws / "run"), "--input", str(ws / "texts_latin1.txt")],
        2,
        "not UTF-8",
    ),
    # multi-label
    "multi-label label not a list": (
        lambda ws: train_args(ws, ML.replace("ml_train", "ml_string")),
        2,
        "ml_string.jsonl: line 2: the label field 'labels' is str, expected a list of labels",
    ),
    "a list of labels in single-label data": (
        lambda ws: train_args(ws, GOOD.replace("train.csv", "ml_list_single.jsonl")),
        2,
        "ml_list_single.jsonl: line 2: the label field 'label' is a list and the data is single-label; set "
        "data.multi_label: true",
    ),
    "empty label in a list": (
        lambda ws: train_args(ws, ML.replace("ml_train", "ml_empty_label")),
        2,
        "ml_empty_label.jsonl: line 1: the label field 'labels' holds an empty label",
    ),
    "empty label between separators": (
        lambda ws: train_args(ws, ML.replace("ml_train.jsonl", "ml_empty_label.csv")),
        2,
        "ml_empty_label.csv: line 3: the label field 'labels' holds an empty label",
    ),
    "empty label separator": (
        lambda ws: train_args(ws, ML, "--set", 'data.label_separator=""'),
        2,
        "data.label_separator: String should have at least 1 character",
    ),
    "multi-label metric on single-label data": (
        lambda ws: train_args(ws, GOOD, "--set", "train.metric=micro_f1"),
        2,
        "train.metric micro_f1 is a multi-label metric and data.multi_label is false",
    ),
    "multi-label corpus without multi_label": (
        lambda ws: train_args(ws, "data: {dataset: reuters21578}\n"),
        2,
        "data.dataset reuters21578 is a multi-label corpus; set data.multi_label: true",
    ),
    "multi-label label unseen in training": (
        lambda ws: ["eval", str(ws / "ml_run"), "--data", str(ws / "ml_unseen.jsonl")],
        2,
        "ml_unseen.jsonl: line 2: label 'space' in 'labels' was never seen in training",
    ),
    "threshold above 1": (
        lambda ws: ["predict", str(ws / "ml_run"), "a goal", "--threshold", "1.5"],
        2,
        "--threshold 1.5: a threshold is a probability, between 0 and 1",
    ),
    "threshold below 0": (lambda ws: ["eval", str(ws / "ml_run"), "--threshold", "-0.2"], 2, "between 0 and 1"),
    "threshold for a single-label run": (
        lambda ws: ["predict", str(ws / "run"), "a b", "--threshold", "0.3"],
        2,
        "--threshold is for multi-label runs",
    ),
    "damaged thresholds.json": (
        lambda ws: ["predict", broken_run(ws, _bad_threshold, "ml_run"), "a b"],
        2,
        "thresholds.json: threshold for label 'money' must be a number in [0, 1], got 7",
    ),
    # rnnclf tune: the search space, the budget, the storage
    "tune unknown key in the space": (
        lambda ws: tune_args(ws, "train.lrr: {low: 0.001, high: 0.01}\n"),
        2,
        "space.yaml: unknown key 'train.lrr' (did you mean 'train.lr'?)",
    ),
    "tune empty range": (
        lambda ws: tune_args(ws, "train.lr: {low: 0.01, high: 0.01}\n"),
        2,
        "space.yaml: train.lr: the range is empty (low 0.01, high 0.01)",
    ),
    "tune inverted range": (
        lambda ws: tune_args(ws, "model.hidden_size: {low: 64, high: 8}\n"),
        2,
        "model.hidden_size: the range is inverted (low 64, high 8); low must be below high",
    ),
    "tune choice that fails the config": (
        lambda ws: tune_args(ws, "model.encoder: [lstm, lsmt]\n"),
        2,
        "space.yaml: model.encoder: the choice 'lsmt' fails the config: model.encoder: Input should be",
    ),
    "tune bound that fails the config": (
        lambda ws: tune_args(ws, "embedding.dropout: {low: 0.1, high: 1.5}\n"),
        2,
        "embedding.dropout: the bound 1.5 fails the config: embedding.dropout: Input should be less than 1",
    ),
    "tune range on a key that is not a number": (
        lambda ws: tune_args(ws, "model.pooling: {low: 1, high: 2}\n"),
        2,
        "model.pooling: this key is not a number; give a list of choices instead of a range",
    ),
    "tune a key that must not be searched": (
        lambda ws: tune_args(ws, "train.seed: [0, 1]\n"),
        2,
        "train.seed cannot be searched: a seed is luck",
    ),
    "tune budget shorter than a trial": (
        lambda ws: tune_args(ws, None, "--budget", "0.2s"),
        2,
        "--budget 0.2s is shorter than one trial of",
    ),
    "tune budget that is not a duration": (
        lambda ws: tune_args(ws, None, "--budget", "soon"),
        2,
        "--budget 'soon': expected a duration such as 90s, 20m, 1h30m",
    ),
    "tune unreachable storage": (
        lambda ws: tune_args(ws, "train.lr: [0.001, 0.01]\n", "--storage", "sqlite:////no/such/folder/study.db"),
        2,
        "--storage sqlite:////no/such/folder/study.db: cannot open the study database",
    ),
    # rnnclf pretrain and model.init
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
    "init missing": (lambda ws: init_args(ws, "nope"), 2, "nope: run directory not found"),
    "init a file": (lambda ws: init_args(ws, "train.csv"), 2, "train.csv: is a file"),
    "pretrain resume missing": (lambda ws: ["pretrain", "--resume", str(ws / "nope")], 2, "run directory not found"),
    "train resume a language model": (
        lambda ws: ["train", "--resume", str(ws / "lm_unfinished")],
        2,
        "a language model; continue it with rnnclf pretrain --resume",
    ),
    "init a classifier": (lambda ws: init_args(ws, "run"), 2, "not an rnnclf pretrain run directory"),
    "init unfinished": (lambda ws: init_args(ws, "lm_unfinished"), 2, "the language model has not finished"),
    "init and vectors": (
        lambda ws: init_args(ws, "lm", "--set", "embedding.pretrained=vectors.txt"),
        2,
        "remove embedding.pretrained",
    ),
    "init other tokenizer": (
        lambda ws: init_args(ws, "lm", "--set", "tokenizer.min_freq=2"),
        2,
        "pretrained with tokenizer.min_freq 1, and this config has 2",
    ),
    "eval a language model": (lambda ws: ["eval", str(ws / "lm")], 2, "a language model (rnnclf pretrain)"),
    "predict top-k zero": (lambda ws: ["predict", str(ws / "run"), "x", "--top-k", "0"], 2, "--top-k"),
    "predict bad format": (lambda ws: ["predict", str(ws / "run"), "x", "--format", "xml"], 2, "--format"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_matrix(ws, case, capsys, monkeypatch):
    make_args, expected_code, fragment = CASES[case]
    args = make_args(ws)
    before = digest(ws / "run")
    monkeypatch.setattr(sys, "argv", ["rnnclf", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    stderr = capsys.readouterr().err
    assert exit_info.value.code == expected_code, stderr
    assert digest(ws / "run") == before, "the trained run was changed"
    assert not (ws / "tune-new").exists(), "a tune that stopped at a mistake left its folder"
    assert not (ws / "pwned").exists(), "a pickle was executed"
    if expected_code == 2:
        # progress lines may come first; the error is one line, and the last
        errors = [line for line in stderr.strip().splitlines() if line.startswith("rnnclf: error: ")]
        assert len(errors) == 1 and stderr.strip().splitlines()[-1] == errors[0], stderr
        assert fragment in errors[0]
        assert "Traceback" not in stderr


def test_matrix_is_large_enough():
    assert len(CASES) >= 40


def test_huge_predict_line_is_bounded(ws, tmp_path, capsys, monkeypatch):
    huge = tmp_path / "huge.txt"
    huge.write_text("not good " * 12_000_000 + "\n")  # about 100 MB on one line
    monkeypatch.setattr(sys, "argv", ["rnnclf", "predict", str(ws / "run"), "--input", str(huge), "--format", "json"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["label"] in {"pos", "neg"}
