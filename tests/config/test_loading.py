"""Loading a config: defaults filled, paths resolved, --set overrides, one-line mistakes naming file and key, the
key reference, the shipped configs, warnings for keys that do nothing."""

from pathlib import Path

import pytest

from rnnclf.config.loading import dump_config, load_config
from rnnclf.config.reference import reference_rows
from rnnclf.config.schema import Config
from rnnclf.errors import RnnclfError

from helpers import ROOT


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_filled_and_paths_resolved_against_config_folder(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    config = load_config(write(folder / "exp.yaml", "data: {train: ../data/train.csv}\n"))
    assert config.data.train == (tmp_path / "data" / "train.csv").resolve()
    assert config.model.encoder == "lstm" and config.train.epochs == 10
    assert config.output.run_dir == Path("runs/exp")
    assert "hidden_size: 128" in dump_config(config)


def test_overrides_parse_values_as_yaml(tmp_path):
    path = write(tmp_path / "c.yaml", "data: {train: t.csv}\nmodel: {encoder: gru}\n")
    config = load_config(
        path, ["model.encoder=rnn", "train.lr=0.01", "model.bidirectional=false", "train.class_weights={a: 2}"]
    )
    assert config.model.encoder == "rnn"
    assert config.train.lr == 0.01
    assert config.model.bidirectional is False
    assert config.train.class_weights == {"a": 2.0}


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        (
            "data: {train: t.csv}\nmodel: {encodr: gru}\n",
            [],
            "unknown key 'model.encodr'; did you mean 'model.encoder'?",
        ),
        ("data: {train: t.csv}\ntrian: {}\n", [], "unknown key 'trian'; did you mean 'train'?"),
        ("data: {train: t.csv}\n", ["train.lr=-1"], "train.lr: Input should be greater than 0"),
        ("data: {train: t.csv}\n", ["train.epochs=many"], "train.epochs: Input should be a valid integer"),
        (
            "data: {train: t.csv}\n",
            ["model.pooling=first"],
            "model.pooling: Input should be 'last', 'mean', 'max' or 'attention'",
        ),
        (
            "data: {train: t.csv}\n",
            ["model.hidden_size=0"],
            "model.hidden_size: Input should be greater than or equal to 1",
        ),
        ("data: {train: t.csv}\n", ["train.class_weights={a: -1}"], "class weights must be positive"),
        ("data: {train: t.csv}\n", ["model.encoder=bag", "model.pooling=last"], "needs a recurrent encoder"),
        ("model: {encoder: gru}\n", [], "missing key 'data'"),
        ("data: {text_field: body}\n", [], "set either data.dataset"),
        ("data: [1, 2\n", [], "invalid YAML"),
        ("- just\n- a list\n", [], "expected a mapping of sections"),
        ("", [], "config file is empty"),
        ("data: {train: t.csv}\n", ["nonsense"], "expected section.key=value"),
    ],
)
def test_config_mistakes_name_file_and_key(tmp_path, text, overrides, expected):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(RnnclfError) as error:
        load_config(path, overrides)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message
    assert "nonsense" in message or str(path) in message


def test_missing_and_directory_config(tmp_path):
    with pytest.raises(RnnclfError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(RnnclfError, match="is a directory"):
        load_config(tmp_path)


def test_reference_covers_every_key():
    keys = {row[0] for row in reference_rows()}
    for section, model in Config.model_fields.items():
        for key in model.annotation.model_fields:
            assert f"{section}.{key}" in keys
    assert all(row[2] for row in reference_rows()), "every key has a one-line meaning"


def test_shipped_configs_are_valid():
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


def test_keys_switched_off_elsewhere_are_warned_about(tmp_path):
    from rnnclf.config.rules import inert_settings

    path = tmp_path / "c.yaml"
    path.write_text("data: {train: t.csv}\n")
    assert inert_settings(load_config(path)) == []
    config = load_config(
        path,
        ["train.momentum=0.5", "train.plateau_patience=3", "model.encoder=bag", "model.hidden_size=64"],
    )
    warnings = inert_settings(config)
    assert warnings == [
        "train.momentum: 0.5 does nothing here (train.optimizer is not sgd)",
        "train.plateau_patience: 3 does nothing here (train.scheduler is not plateau)",
        "model.hidden_size: 64 does nothing here (model.encoder is bag)",
    ]
    used = load_config(path, ["train.optimizer=sgd", "train.momentum=0.5", "train.scheduler=plateau"])
    assert inert_settings(used) == []


def test_tensorboard_override_keeps_the_default_run_dir(tmp_path):
    path = write(tmp_path / "config.yaml", "data: {train: train.csv}\noutput: {tensorboard: true}\n")
    config = load_config(path, ["output.tensorboard=false"])
    assert config.output.tensorboard is False and config.output.run_dir == Path("runs") / "config"
    assert load_config(path).output.tensorboard is True
