"""The bad-input matrix of `rnnclf train` (config, data, run directories, multi-label data, model.init): each
mistake gets one clear line naming the file, key or row, exit code 2, no traceback, and leaves what existed before
untouched. Runs the real entry point in-process (helpers/mistakes.py)."""

import pytest

from helpers.mistakes import GOOD, ML, check_mistake, init_args, train_args

CASES = {
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
    "an n-gram cap of 0": (
        lambda ws: train_args(ws, GOOD, "--set", "model.wide=true", "--set", "wide.max_features=0"),
        2,
        "wide.max_features: Input should be greater than or equal to 1",
    ),
    "n-grams of 4 words": (lambda ws: train_args(ws, GOOD, "--set", "wide.ngrams=4"), 2, "wide.ngrams"),
    "a C of 0": (lambda ws: train_args(ws, GOOD, "--set", "wide.c=0"), 2, "wide.c: Input should be greater than 0"),
    "a window longer than max_length": (
        lambda ws: train_args(ws, GOOD, "--set", "model.chunk=500", "--set", "data.max_length=100"),
        2,
        "model.chunk 500 is longer than data.max_length 100",
    ),
    "a window of one token": (lambda ws: train_args(ws, GOOD, "--set", "model.chunk=1"), 2, "model.chunk"),
    "no encoder and no wide head": (
        lambda ws: train_args(ws, GOOD, "--set", "model.encoder=none"),
        2,
        "model.encoder none leaves no model; set model.wide: true",
    ),
    "unknown pooling": (
        lambda ws: train_args(ws, GOOD, "--set", "model.pooling=attn"),
        2,
        "model.pooling: Input should be",
    ),
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
    "init missing": (lambda ws: init_args(ws, "nope"), 2, "nope: run directory not found"),
    "init a file": (lambda ws: init_args(ws, "train.csv"), 2, "train.csv: is a file"),
    "train resume a language model": (
        lambda ws: ["train", "--resume", str(ws / "lm_unfinished")],
        2,
        "a language model; continue it with rnnclf pretrain --resume",
    ),
    "init a classifier of another encoder": (
        lambda ws: init_args(ws, "run", "--set", "model.encoder=lstm"),
        2,
        "trained with model.encoder gru, and this config has lstm",
    ),
    "init a classifier of other sizes": (
        lambda ws: init_args(ws, "run", "--set", "model.hidden_size=12"),
        2,
        "trained with model.hidden_size 8, and this config has 12",
    ),
    "init an unfinished classifier": (
        lambda ws: init_args(ws, "run_unfinished"),
        2,
        "the run has not finished; continue it first: rnnclf train --resume",
    ),
    "init a multi-label classifier": (lambda ws: init_args(ws, "ml_run"), 2, "trained with data.multi_label True"),
    "rehearsal without init": (
        lambda ws: train_args(ws, GOOD, "--set", "data.rehearsal=10"),
        2,
        "data.rehearsal mixes in the training texts of model.init's run",
    ),
    "rehearsal not a count": (
        lambda ws: init_args(ws, "run", "--set", "data.rehearsal=2.5"),
        2,
        "data.rehearsal 2.5: a count of texts",
    ),
    "rehearsal true": (
        lambda ws: init_args(ws, "run", "--set", "data.rehearsal=true"),
        2,
        "a count of texts (1000) or a share of them (0.2), not true / false",
    ),
    "rehearsal 1": (lambda ws: init_args(ws, "run", "--set", "data.rehearsal=1"), 2, "a whole number from 2"),
    "init a folder that is not a run": (lambda ws: init_args(ws, "dir.csv"), 2, "not a run directory (no config.yaml)"),
    "rehearsal from a language model": (
        lambda ws: init_args(ws, "lm", "--set", "data.rehearsal=10"),
        2,
        "data.rehearsal mixes in an earlier classifier's training texts",
    ),
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
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_matrix(mistakes, case, capsys, monkeypatch):
    check_mistake(mistakes, CASES[case], capsys, monkeypatch)


def test_matrix_is_large_enough():
    assert len(CASES) >= 40
