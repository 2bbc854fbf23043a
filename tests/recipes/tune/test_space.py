"""rnnclf tune's search space: kinds from the config keys, choices that need another searched value, one-line
mistakes, the default space sized by the data."""

from __future__ import annotations

import optuna
import pytest
import yaml

from rnnclf.config.loading import parse_config
from rnnclf.config.schema import Config
from rnnclf.errors import RnnclfError
from rnnclf.recipes.tune.space import Dimension, base_values, check_space, default_space


def base(text: str = "data: {train: x.csv}\n") -> Config:
    return parse_config(yaml.safe_load(text), "base.yaml")


def test_space_kinds_come_from_the_config_keys():
    space = check_space(
        {
            "train.lr": {"low": 1e-4, "high": 1e-2, "log": True},
            "model.hidden_size": {"low": 32, "high": 256, "step": 32},
            "model.encoder": ["lstm", "gru"],
            "train.grad_clip": {"low": 0.5, "high": 5},
        },
        base(),
        "space.yaml",
    )
    assert [d.kind for d in space] == ["float", "int", "categorical", "float"]
    trial = optuna.create_study().ask()
    values = {d.key: d.suggest(trial) for d in space}
    assert isinstance(values["model.hidden_size"], int) and values["model.hidden_size"] % 32 == 0
    assert 1e-4 <= values["train.lr"] <= 1e-2 and values["model.encoder"] in ("lstm", "gru")


def test_a_choice_that_works_only_beside_another_searched_value_is_accepted():
    """model.dropout needs two layers: fine when the space also searches num_layers, a mistake when it cannot."""
    together = {"model.dropout": {"low": 0.0, "high": 0.5}, "model.num_layers": [1, 2]}
    assert len(check_space(together, base(), "space.yaml")) == 2
    with pytest.raises(RnnclfError, match="model.dropout: the bound 0.5 fails the config: model.dropout acts between"):
        check_space({"model.dropout": {"low": 0.0, "high": 0.5}}, base(), "space.yaml")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"train.lr": {"low": 0.0, "high": 0.1, "log": True}}, "a log range needs low above 0"),
        ({"train.lr": {"low": 0.001}}, "a range needs both low and high"),
        ({"train.lr": {"low": 0.001, "hihg": 0.1}}, "unknown range key 'hihg' (did you mean 'high'?)"),
        ({"model.hidden_size": {"low": 8, "high": 64.5}}, "model.hidden_size takes whole numbers"),
        ({"model.hidden_size": {"low": 8, "high": 60, "step": 16}}, "high - low (52) must be a whole number of steps"),
        ({"model.encoder": []}, "the list of choices is empty"),
        ({"model.encoder": ["gru", "gru"]}, "a choice is listed twice"),
        ({"data.valid_fraction": [0.1, 0.2]}, "data.valid_fraction cannot be searched"),
        ({"output.run_dir": ["a", "b"]}, "output.run_dir cannot be searched"),
        ({"train": {"lr": 1}}, "unknown key 'train'"),
        ({}, "the search space is empty"),
    ],
)
def test_space_mistakes(spec, message):
    with pytest.raises(RnnclfError) as error:
        check_space(spec, base(), "space.yaml")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("size", "hidden", "epochs"),
    [(2_000, (64, 256), (4, 15)), (50_000, (128, 512), (3, 10)), (500_000, (256, 1024), (2, 6))],
)
def test_default_space_is_sized_by_the_data_and_holds_the_config(size, hidden, epochs):
    config = base("data: {train: x.csv}\nmodel: {hidden_size: 100}\ntrain: {epochs: 30, lr: 0.05}\n")
    space = {d.key: d for d in default_space(config, size)}
    sizes = space["model.hidden_size"].choices
    assert (min(s for s in sizes if s != 100), max(sizes)) == hidden and 100 in sizes
    assert (space["train.epochs"].low, space["train.epochs"].high) == (epochs[0], 30)
    assert space["train.lr"].high == 0.05
    assert set(base_values(config, list(space.values()))) == set(space)  # trial 0 is the config exactly
    check_space({d.key: d.to_yaml() for d in space.values()}, config, "default")  # every value valid


def test_base_values_leave_out_what_the_space_cannot_hold():
    space = [
        Dimension("train.lr", "float", low=0.01, high=0.1),
        Dimension("model.encoder", "categorical", choices=("gru",)),
    ]
    assert base_values(base(), space) == {}
