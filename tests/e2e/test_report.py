"""`rnnclf report` end to end: the columns that differ between runs, as JSON, a table or Markdown."""

import json
import shutil

import pytest

from helpers.cli import rnnclf, run_light


def test_report_command_prints_json_when_piped_and_writes_markdown(plot_runs, plot_workspace):
    result = rnnclf("report", "a", "b", "--out", "report.md", cwd=plot_workspace)
    assert result.returncode == 0, result.stderr
    assert [row["model.hidden_size"] for row in json.loads(result.stdout)] == [24, 32]
    markdown = (plot_workspace / "report.md").read_text().splitlines()
    header = [cell.strip() for cell in markdown[0].strip("|").split("|")]
    assert header[:2] == ["run", "model.hidden_size"] and "test_accuracy" in header
    assert set(markdown[1].replace("|", "").replace(":", "")) == {"-"}
    assert [line.split("|")[2].strip() for line in markdown[2:]] == ["24", "32"]
    table = rnnclf("report", "a", "b", "--format", "table", cwd=plot_workspace)
    assert table.stdout.splitlines()[0].split()[:2] == ["run", "model.hidden_size"]
    assert len(table.stdout.splitlines()) == 3


def test_report_markdown_goes_through_a_link_and_into_a_pipe(plot_runs, plot_workspace):
    """--out a symbolic link writes its target (the link stays); --out /dev/stdout writes into the pipe."""
    (plot_workspace / "reports").mkdir(exist_ok=True)
    (plot_workspace / "reports" / "latest.md").write_text("old")
    (plot_workspace / "link.md").symlink_to(plot_workspace / "reports" / "latest.md")
    result = rnnclf("report", "a", "b", "--out", "link.md", cwd=plot_workspace)
    assert result.returncode == 0, result.stderr
    assert (plot_workspace / "link.md").is_symlink()
    assert (plot_workspace / "reports" / "latest.md").read_text().startswith("| run")
    piped = rnnclf("report", "a", "b", "--out", "/dev/stdout", "--format", "table", cwd=plot_workspace)
    assert piped.returncode == 0, piped.stderr
    assert "| run" in piped.stdout and piped.stdout.splitlines()[0].split()[:2] == ["run", "model.hidden_size"]


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("nowhere", "nowhere: run directory not found"),
        ("train.csv", "train.csv: not a directory"),
        ("empty", "empty: not a run directory (no config.yaml)"),
        ("unfinished", "unfinished: no metrics.json; training has not finished"),
    ],
)
def test_report_mistakes_are_one_line_exit_2(plot_runs, plot_workspace, target, fragment):
    (plot_workspace / "empty").mkdir(exist_ok=True)
    (plot_workspace / "unfinished").mkdir(exist_ok=True)
    shutil.copy(plot_runs["a"] / "config.yaml", plot_workspace / "unfinished" / "config.yaml")
    result = rnnclf("report", "a", target, cwd=plot_workspace)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rnnclf: error: {fragment}"), result.stderr


def test_report_and_help_stay_light(plot_runs):
    result = run_light(
        [["--help"], ["report", str(plot_runs["a"]), "--format", "markdown"]], {"torch", "matplotlib", "tensorboard"}
    )
    assert "| run |" in result.stdout


def test_report_compares_multi_label_runs_by_micro_and_macro_f1(multi_label_workspace):
    result = rnnclf("report", "run", "--format", "json", cwd=multi_label_workspace)
    row = json.loads(result.stdout)[0]
    metrics = json.loads((multi_label_workspace / "run" / "metrics.json").read_text())
    assert row["test_micro_f1"] == metrics["test"]["micro_f1"] and row["test_macro_f1"] == metrics["test"]["macro_f1"]
    assert row["valid_micro_f1"] == metrics["valid"]["micro_f1"]
