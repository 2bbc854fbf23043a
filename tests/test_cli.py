"""The command line end to end, in a subprocess, as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import digest, order_task, write_csv


def rnnclf(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnclf", *args], capture_output=True, text=True, input=stdin, cwd=cwd, timeout=300
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    write_csv(folder / "train.csv", order_task(800, seed=3))
    write_csv(folder / "test.csv", order_task(200, seed=4))
    (folder / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\n"
        "embedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 24}\n"
        "train: {epochs: 6, batch_size: 32, lr: 0.01}\n"
    )
    return folder


@pytest.fixture(scope="module")
def trained(workspace) -> Path:
    result = rnnclf("train", "--config", "config.yaml", "--set", "train.seed=1", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert "device: cpu" in result.stderr and "test (best epoch" in result.stderr
    summary = json.loads(result.stdout)  # piped: the summary is JSON
    assert summary["test"]["accuracy"] > 0.5 and summary["best_epoch"] >= 1
    return workspace / "runs" / "config"


def test_train_writes_a_self_contained_run(trained):
    names = {p.name for p in trained.iterdir()}
    assert {
        "config.yaml",
        "labels.json",
        "tokenizer.json",
        "model.safetensors",
        "state",
        "metrics.jsonl",
        "metrics.json",
        "env.json",
    } <= names
    assert json.loads((trained / "labels.json").read_text()) == ["neg", "pos"]
    epochs = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
    summary = json.loads((trained / "metrics.json").read_text())
    assert summary["test"]["accuracy"] >= 0.9
    assert "seed: 1" in (trained / "config.yaml").read_text()
    assert json.loads((trained / "env.json").read_text())["device"] == "cpu"


def test_eval_table_and_json(trained, workspace):
    table = rnnclf("eval", str(trained), "--format", "table")
    assert table.returncode == 0, table.stderr
    assert "macro F1" in table.stdout and "confusion matrix" in table.stdout
    result = rnnclf("eval", str(trained), "--split", "valid")
    report = json.loads(result.stdout)
    assert set(report["per_class"]) == {"neg", "pos"}
    assert report["support"] == 80 and (trained / "eval" / "valid.json").exists()
    on_file = json.loads(rnnclf("eval", str(trained), "--data", str(workspace / "test.csv")).stdout)
    summary = json.loads((trained / "metrics.json").read_text())
    assert on_file["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    # a file's results never replace a split's: eval/test.json (table run above) and eval/file-test.json
    assert (trained / "eval" / "test.json").exists() and (trained / "eval" / "file-test.json").exists()


def test_eval_of_the_test_split_needs_only_the_test_file(trained, workspace):
    moved = workspace / "train.moved.csv"
    (workspace / "train.csv").rename(moved)
    try:
        result = rnnclf("eval", str(trained), "--split", "test")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["support"] == 200
        # the valid split is carved from train: without it, one line that names the file and --data
        assert_user_error(rnnclf("eval", str(trained), "--split", "valid"), "train.csv", "--data FILE")
    finally:
        moved.rename(workspace / "train.csv")


def test_predict_arguments_file_and_stdin(trained, workspace):
    result = rnnclf(
        "predict", str(trained), "the film was good not really", "not a good movie", "--top-k", "2", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["label"] for row in rows] == ["pos", "neg"]
    assert len(rows[0]["top"]) == 2 and sum(t["probability"] for t in rows[0]["top"]) == pytest.approx(1, abs=1e-4)
    (workspace / "texts.txt").write_text("not a good movie\n\nthe movie was good not really\n")
    from_file = rnnclf("predict", str(trained), "--input", str(workspace / "texts.txt"))
    assert [json.loads(line)["label"] for line in from_file.stdout.splitlines()] == ["neg", "pos"]
    from_csv = rnnclf("predict", str(trained), "--input", str(workspace / "test.csv"))
    assert len(from_csv.stdout.splitlines()) == 200
    from_stdin = rnnclf("predict", str(trained), "--input", "-", "--format", "table", stdin="not a good movie\n")
    assert from_stdin.stdout.split()[-2:][0] == "neg"


def test_existing_run_directory_is_never_overwritten(trained, workspace):
    before = digest(trained)
    result = rnnclf("train", "--config", "config.yaml", cwd=workspace)
    assert_user_error(result, "already exists", str(Path("runs") / "config"))
    assert digest(trained) == before


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        (
            "data: {train: train.csv}\nmodel: {encodr: gru}\n",
            ["bad.yaml", "unknown key 'model.encodr'", "did you mean 'model.encoder'"],
        ),
        ("data: {train: missing.csv}\n", ["missing.csv: file not found"]),
        ("data: {train: train.csv, text_field: body}\n", ["train.csv: no column 'body'"]),
        ("data: {train: one_class.csv}\n", ["one_class.csv: only one class"]),
        ("data: {train: train.csv, test: unseen.csv}\n", ["unseen.csv: line 2: label 'maybe'"]),
        ("data: {train: empty_text.csv}\n", ["empty_text.csv: line 3: empty text"]),
        ("data: {train: train.csv}\ntrain: {device: cuda}\n", ["train.device is 'cuda' but torch sees no CUDA device"]),
        ("data: {train: train.csv\n", ["bad.yaml", "invalid YAML"]),
    ],
)
def test_train_mistakes_are_one_line_exit_2(workspace, config, fragments):
    write_csv(workspace / "one_class.csv", [("a b", "pos"), ("c d", "pos")])
    write_csv(workspace / "unseen.csv", [("a b", "maybe")])
    write_csv(workspace / "empty_text.csv", [("a b", "pos"), ("   ", "neg")])
    (workspace / "bad.yaml").write_text(config + "output: {run_dir: runs/never}\n")
    result = rnnclf("train", "--config", "bad.yaml", cwd=workspace)
    assert_user_error(result, *fragments)
    assert not (workspace / "runs" / "never").exists()


def test_eval_and_predict_mistakes(trained, workspace):
    write_csv(workspace / "unseen_eval.csv", [("a good movie", "pos"), ("a b", "maybe")])
    assert_user_error(
        rnnclf("eval", str(trained), "--data", str(workspace / "unseen_eval.csv")),
        "line 3: label 'maybe'",
        "never seen in training",
    )
    assert_user_error(rnnclf("eval", str(workspace / "nope")), "run directory not found")
    assert_user_error(rnnclf("predict", str(trained)), "no texts to classify")
    assert_user_error(rnnclf("predict", str(trained), "  "), "text 1: empty text")
    assert_user_error(
        rnnclf("predict", str(trained), "--input", str(workspace / "none.txt")), "none.txt: file not found"
    )


def test_debug_shows_the_traceback(workspace):
    result = rnnclf("--debug", "train", "--config", "nope.yaml", cwd=workspace)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_config_show_prints_every_default(workspace):
    result = rnnclf("config", "show", str(workspace / "config.yaml"), "--set", "model.encoder=lstm")
    assert result.returncode == 0, result.stderr
    assert "encoder: lstm" in result.stdout and "pooling: max" in result.stdout and "num_threads: null" in result.stdout


COMMANDS = [
    ["train"],
    ["eval"],
    ["predict"],
    ["report"],
    ["export"],
    ["serve"],
    ["config", "show"],
    ["data", "list"],
    ["data", "fetch"],
]


def test_help_and_version():
    result = rnnclf("--help")
    assert result.returncode == 0 and "train" in result.stdout and "predict" in result.stdout
    assert "--install-completion" in result.stdout  # Typer's shell completion
    assert rnnclf("--version").stdout.strip().startswith("rnnclf ")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = rnnclf(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Example: rnnclf " + " ".join(command) in " ".join(result.stdout.split())


def test_data_list_and_unknown_corpus():
    listing = rnnclf("data", "list", "--format", "table")
    assert listing.returncode == 0, listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines()[1:]]
    assert {"r8", "r52", "20ng", "ag_news", "imdb", "yelp_polarity", "dbpedia_14", "sst2"} <= set(names)
    piped = json.loads(rnnclf("data", "list").stdout)  # not a terminal: JSON
    assert [row["name"] for row in piped] == names and all(isinstance(row["cached"], bool) for row in piped)
    assert_user_error(rnnclf("data", "fetch", "r9"), "r9", "did you mean 'r8'")


def run_light(argvs: list[list[str]], heavy: set[str]) -> subprocess.CompletedProcess:
    """`rnnclf ARGV` for each argv, in one fresh interpreter: each must succeed and import none of `heavy`."""
    code = (
        "import sys\n"
        "from rnnclf.cli import main\n"
        f"for argv in {argvs!r}:\n"
        "    sys.argv = ['rnnclf', *argv]\n"
        "    try:\n        main()\n    except SystemExit as exit:\n        assert not exit.code, exit.code\n"
        f"heavy = {sorted(heavy)!r}\n"
        "assert not set(heavy) & set(sys.modules), set(heavy) & set(sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def test_help_and_config_show_do_not_import_torch(workspace):
    result = run_light([["config", "show", str(workspace / "config.yaml")]], {"torch", "tokenizers"})
    assert "encoder: gru" in result.stdout


def test_a_key_that_does_nothing_is_one_warning_line(workspace):
    result = rnnclf(
        "train", "--config", "config.yaml", "--run-dir", "runs/warned", "--set", "train.epochs=1",
        "--set", "train.momentum=0.5", cwd=workspace,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "rnnclf: warning: config.yaml: train.momentum: 0.5 does nothing here (train.optimizer is not sgd)"
    ]


def test_predict_names_the_option_for_a_missing_column(trained, workspace):
    result = rnnclf("predict", str(trained), "--input", "test.csv", "--text-field", "body", cwd=workspace)
    assert_user_error(result, "no column 'body'", "choose the column with --text-field")
