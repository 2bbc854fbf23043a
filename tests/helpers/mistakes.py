"""The bad-input matrix of the end-to-end tests: a workspace of damaged files and runs, the command lines that feed
them to each command, and the check every mistake must pass: one clear line naming the file, key or row, exit code
2, no traceback, and what existed before left untouched. The cases live with each command's tests
(tests/e2e/test_*.py, CASES); they run the real entry point in-process."""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest

from rnnclf.cli import main
from rnnclf.config.loading import load_config
from rnnclf.recipes.classify import train
from rnnclf.recipes.pretrain import pretrain

from helpers.data import digest, multi_label_task, order_task, write_csv, write_jsonl

GOOD = "data: {train: train.csv}\nembedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\ntrain: {epochs: 1}\n"
ML_DATA = "data: {train: %s, multi_label: true, label_field: labels}\n"
ML = ML_DATA % "ml_train.jsonl" + "embedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\ntrain: {epochs: 1}\n"


class Payload:
    """Unpickling this would create a file: proof that no pickle is ever executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def make_workspace(folder: Path) -> Path:
    """Files with every kind of mistake, a trained run, a multi-label run and a language model (finished and not)."""
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
    shutil.copytree(folder / "run", folder / "run_unfinished")
    (folder / "run_unfinished" / "metrics.json").unlink()
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


def check_mistake(ws: Path, case: tuple, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one case of a CASES table: `rnnclf ARGS` exits with the expected code; a mistake (exit 2) is one line, the
    last, naming what is wrong; nothing that existed is changed, no tune folder is left, no pickle is executed."""
    make_args, expected_code, fragment = case
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
