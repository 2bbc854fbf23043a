"""`rnnclf data` end to end: the corpus list, and `data check` in a subprocess as a user runs it."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from helpers.cli import assert_user_error, rnnclf
from helpers.data import order_task, sentences, write_csv


def test_data_list_and_unknown_corpus():
    listing = rnnclf("data", "list", "--format", "table")
    assert listing.returncode == 0, listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines()[1:]]
    assert {"r8", "r52", "20ng", "ag_news", "imdb", "yelp_polarity", "dbpedia_14", "sst2"} <= set(names)
    piped = json.loads(rnnclf("data", "list").stdout)  # not a terminal: JSON
    assert [row["name"] for row in piped] == names and all(isinstance(row["cached"], bool) for row in piped)
    assert_user_error(rnnclf("data", "fetch", "r9"), "r9", "did you mean 'r8'")


def data_check(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnclf", "data", "check", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rnnclf: error: ")
    for fragment in fragments:
        assert fragment in line


def test_cli_json_when_piped_strict_exit_and_markdown(planted, tmp_path):
    (tmp_path / "config.yaml").write_text("data: {train: train.csv, test: test.csv}\n")
    result = data_check("--config", "config.yaml", "--out", "report.md", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [split["name"] for split in report["splits"]] == ["train", "valid", "test"]
    assert report["splits"][1]["carved"] == "data.valid_fraction 0.1 of train, train.seed 0"
    assert report["serious"] > 0
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.startswith("# Data check") and "near-duplicates" in markdown
    strict = data_check("--config", "config.yaml", "--strict", "--format", "table", cwd=tmp_path)
    assert strict.returncode == 1
    assert "SERIOUS" in strict.stdout and "serious finding" in strict.stderr


def test_cli_strict_passes_clean_data(tmp_path):
    rng = random.Random(9)
    texts = sentences(rng, 80, size=8)
    write_csv(tmp_path / "train.csv", [(t, "ab"[i % 2]) for i, t in enumerate(texts[:60])])
    write_csv(tmp_path / "test.csv", [(t, "ab"[i % 2]) for i, t in enumerate(texts[60:])])
    result = data_check("--data", "train.csv", "--data", "test.csv", "--strict", "--format", "markdown", cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "0 serious finding(s)" in result.stdout


def test_cli_bad_input_is_one_line(tmp_path):
    write_csv(tmp_path / "train.csv", order_task(50, seed=1))
    one_line_error(data_check("--data", "nothere.csv", cwd=tmp_path), "nothere.csv", "not found")
    (tmp_path / "bad.jsonl").write_text('{"text": "fine", "label": "a"}\n{"text": "broken\n')
    one_line_error(data_check("--data", "bad.jsonl", cwd=tmp_path), "bad.jsonl", "line 2", "invalid JSON")
    (tmp_path / "bad.csv").write_text("text,label\nfine,a\ntoo,many,fields\n")
    one_line_error(data_check("--data", "bad.csv", cwd=tmp_path), "bad.csv", "line 3")
    one_line_error(
        data_check("--data", "train.csv", "--out", "missing/report.md", cwd=tmp_path), "missing", "not exist"
    )
    assert not (tmp_path / "missing").exists()
    one_line_error(data_check(cwd=tmp_path), "--config", "--data")
    (tmp_path / "c.yaml").write_text("data: {train: train.csv}\n")
    one_line_error(data_check("--config", "c.yaml", "--text-field", "body", cwd=tmp_path), "--text-field")


def test_cli_data_files_say_what_the_user_typed(tmp_path):
    """With --data, a --set the files would replace is refused, and a missing column names --text-field, not the
    config key the user never wrote."""
    write_csv(tmp_path / "train.csv", order_task(30, seed=3))
    write_csv(tmp_path / "other.csv", order_task(30, seed=4))
    one_line_error(
        data_check("--data", "train.csv", "--set", "data.train=other.csv", cwd=tmp_path),
        "--set data.train=other.csv",
        "--data names the files",
    )
    one_line_error(data_check("--data", "train.csv", "--set", "data.valid_fraction=0.2", cwd=tmp_path), "carves no")
    one_line_error(
        data_check("--data", "train.csv", "--text-field", "body", cwd=tmp_path),
        "no column 'body'",
        "--text-field / --label-field",
    )
    (tmp_path / "c.yaml").write_text("data: {train: train.csv, text_field: body}\n")
    one_line_error(data_check("--config", "c.yaml", cwd=tmp_path), "no column 'body'", "data.text_field")


def test_cli_refuses_the_same_file_twice(tmp_path):
    write_csv(tmp_path / "t.csv", order_task(30, seed=2))
    one_line_error(
        data_check("--data", "t.csv", "--data", "./t.csv", cwd=tmp_path),
        str((tmp_path / "t.csv").resolve()),
        "given twice",
    )
    one_line_error(data_check("--data", "t.csv", "--data", str(tmp_path / "t.csv"), cwd=tmp_path), "given twice")


def test_cli_a_failed_out_write_prints_no_report(tmp_path):
    write_csv(tmp_path / "t.csv", order_task(30, seed=2))
    failing = (
        "import sys, rnnclf.files; from rnnclf.errors import RnnclfError; from rnnclf.cli import main\n"
        "def refuse(path, data): raise RnnclfError(f'{path}: disk full')\n"
        "rnnclf.files.write_atomic = refuse; sys.argv = ['rnnclf', *sys.argv[1:]]; main()"
    )
    args = ["data", "check", "--data", "t.csv", "--out", "report.md"]
    result = subprocess.run([sys.executable, "-c", failing, *args], capture_output=True, text=True, cwd=tmp_path)
    one_line_error(result, "report.md", "disk full")
    assert result.stdout == ""
