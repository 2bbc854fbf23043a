"""`rnnclf config show` end to end: every default printed, without importing torch."""

from helpers.cli import rnnclf, run_light


def test_config_show_prints_every_default(order_workspace):
    result = rnnclf("config", "show", str(order_workspace / "config.yaml"), "--set", "model.encoder=lstm")
    assert result.returncode == 0, result.stderr
    assert "encoder: lstm" in result.stdout and "pooling: max" in result.stdout and "num_threads: null" in result.stdout


def test_help_and_config_show_do_not_import_torch(order_workspace):
    result = run_light([["config", "show", str(order_workspace / "config.yaml")]], {"torch", "tokenizers"})
    assert "encoder: gru" in result.stdout
