"""The command line itself: --help with an example for every command, --version, --debug, and help that imports
none of the heavy packages."""

import pytest

from helpers.cli import rnnclf, run_light

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


def test_debug_shows_the_traceback(tmp_path):
    result = rnnclf("--debug", "train", "--config", "nope.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_help_imports_neither_torch_nor_onnx():
    result = run_light([["--help"], ["export", "--help"], ["predict", "--help"]], {"torch", "onnx", "onnxruntime"})
    assert "--backend" in result.stdout and "model.onnx.json" in result.stdout


def test_help_does_not_import_fastapi_or_torch():
    result = run_light([["serve", "--help"]], {"torch", "fastapi", "uvicorn"})
    assert "--max-body-bytes" in result.stdout


def test_serve_help_names_explain():
    result = rnnclf("serve", "--help")
    assert "/explain" in result.stdout and "--max-explain-texts" in result.stdout
