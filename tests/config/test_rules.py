"""config/rules.py holds every "invalid or inert here" rule: each config key is either read by a command or named
there as inert (or invalid) for it. Checked by recording which keys a real run reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rnnclf.config import rules
from rnnclf.config.loading import load_config
from rnnclf.config.schema import SECTIONS, Config, Section
from rnnclf.errors import RnnclfError
from rnnclf.recipes.classify import train
from rnnclf.recipes.pretrain import pretrain

from helpers.data import multi_label_task, order_task, write_csv

ALL_KEYS = {f"{name}.{key}" for name, section in SECTIONS.items() for key in section.model_fields}
SECTION_NAMES = {section: name for name, section in SECTIONS.items()}


@contextmanager
def keys_read() -> Iterator[set[str]]:
    """Every config key read (an attribute of a section, or a whole section's model_dump) while the block runs."""
    seen: set[str] = set()
    plain_dump = Section.model_dump

    def getattribute(self, name):
        cls = object.__getattribute__(self, "__class__")
        if cls in SECTION_NAMES and name in cls.model_fields:
            seen.add(f"{SECTION_NAMES[cls]}.{name}")
        return object.__getattribute__(self, name)

    def dump(self, *args, **kwargs):
        if type(self) in SECTION_NAMES:
            seen.update(f"{SECTION_NAMES[type(self)]}.{key}" for key in type(self).model_fields)
        return plain_dump(self, *args, **kwargs)

    Section.__getattribute__, Section.model_dump = getattribute, dump
    try:
        yield seen
    finally:
        del Section.__getattribute__
        Section.model_dump = plain_dump


BASE = (
    "embedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\n"
    "train: {epochs: 2, batch_size: 32, num_threads: 1, save_every: 3, early_stopping: 3}\n"
)
# together these switch on every part a key may belong to (optimizer, schedule, multi-label files, a test split)
VARIANTS = {
    "defaults": [],
    "sgd and plateau": ["train.optimizer=sgd", "train.scheduler=plateau"],
    "linear warm-up": ["train.scheduler=linear", "train.warmup_ratio=0.1"],
    "multi-label CSV": ["data.multi_label=true"],
    "distilled": ["train.teacher={teacher}", "train.teacher_augment=1", "data.unlabelled=[{unlabelled}]"],
    "a cross-validation fold": ["data.folds=3", "data.fold=1", "data.fold_seed=2"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rules")
    labelled = [(text, "|".join(labels)) for text, labels in multi_label_task(300, seed=3)]
    return {
        "single": write_csv(folder / "single.csv", order_task(300, seed=1)),
        "multi": write_csv(folder / "multi.csv", labelled),
        "test": write_csv(folder / "test.csv", order_task(60, seed=2)),
        "unlabelled": write_csv(folder / "more.csv", order_task(50, seed=4)),
        "folder": folder,
        "teacher": teacher_run(folder),
    }


def teacher_run(folder: Path) -> Path:
    """A run for the distilled variant to learn from."""
    (folder / "teacher.yaml").write_text(f"data: {{train: {folder / 'single.csv'}}}\n" + BASE)
    train(load_config(folder / "teacher.yaml", [f"output.run_dir={folder / 'teacher'}"]), log=lambda line: None)
    return folder / "teacher"


def config_for(data: dict[str, Path], name: str, overrides: list[str]) -> Config:
    multi = "data.multi_label=true" in overrides
    file = data["multi" if multi else "single"]
    path = data["folder"] / f"{name.replace(' ', '_')}.yaml"
    path.write_text(f"data: {{train: {file}, test: {data['test'] if not multi else file}}}\n" + BASE)
    run_dir = data["folder"] / "runs" / f"{name.replace(' ', '_')}-{len(list(data['folder'].glob('runs/*')))}"
    overrides = [item.format(teacher=data["teacher"], unlabelled=data["unlabelled"]) for item in overrides]
    return load_config(path, [*overrides, f"output.run_dir={run_dir}"])


def test_every_key_is_read_by_pretrain_or_named_inert_there(data):
    read: set[str] = set()
    for name, overrides in VARIANTS.items():
        if name in ("distilled", "a cross-validation fold"):  # keys pretrain refuses or calls inert (rules.py)
            continue
        config = config_for(data, f"lm {name}", [*overrides, f"data.unlabelled=[{data['unlabelled']}]"])
        with keys_read() as seen:
            pretrain(config, log=lambda line: None)
        read |= seen
    inert, invalid = set(rules.PRETRAIN_INERT), set(rules.PRETRAIN_INVALID)
    assert not read & inert, f"rnnclf pretrain reads keys rules.PRETRAIN_INERT calls inert: {read & inert}"
    missing = ALL_KEYS - read - inert - invalid
    assert not missing, f"neither read by rnnclf pretrain nor named in rules.PRETRAIN_INERT: {sorted(missing)}"


def test_every_key_is_read_by_train_or_named_inert_there(data):
    read: set[str] = set()
    for name, overrides in VARIANTS.items():
        with keys_read() as seen:
            train(config_for(data, f"train {name}", overrides), log=lambda line: None)
        read |= seen
    inert = set(rules.TRAIN_INERT)
    assert not read & inert, f"rnnclf train reads keys rules.TRAIN_INERT calls inert: {read & inert}"
    # model.init (fine-tuning) is read only when set; tests/recipes/test_pretrain.py trains from a language model
    missing = ALL_KEYS - read - inert - {"model.init"}
    assert not missing, f"neither read by rnnclf train nor named in rules.TRAIN_INERT: {sorted(missing)}"


def test_inert_keys_are_warned_about_once_each(data):
    config = config_for(
        data,
        "warned",
        ["train.metric=macro_f1", "train.thresholds=global", "model.pooling=mean", "data.unlabelled=[x.txt]"],
    )
    pretrain_lines = rules.pretrain_warnings(config)
    for key in ("train.metric", "train.thresholds", "model.pooling"):
        assert sum(line.startswith(f"{key}:") for line in pretrain_lines) == 1, pretrain_lines
    train_lines = rules.train_warnings(config)
    assert any(line.startswith("data.unlabelled:") for line in train_lines)
    distilled = config.model_copy(update={"train": config.train.model_copy(update={"teacher": Path("t")})})
    assert not any(line.startswith("data.unlabelled:") for line in rules.train_warnings(distilled))
    assert rules.train_warnings(config_for(data, "t", ["train.teacher_weight=0.9"])) == [
        "train.teacher_weight: 0.9 does nothing here (train.teacher is null)"
    ]
    assert any(line.startswith("train.thresholds:") and "multi_label is false" in line for line in train_lines)
    assert not any(line.startswith(("train.metric:", "model.pooling:")) for line in train_lines)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("model.encoder=bag", "model.encoder bag has no recurrent layers"),
        ("model.num_layers=2", "a bidirectional classifier's second layer"),
        ("train.lr_decay=2.6", "train.lr_decay is for fine-tuning"),
        ("train.gradual_unfreezing=1", "train.gradual_unfreezing is for fine-tuning"),
    ],
)
def test_what_pretrain_cannot_train_is_one_line(data, override, fragment):
    config = config_for(data, "invalid", [override, "model.pooling=max"])
    with pytest.raises(RnnclfError, match=f"^source.yaml: {fragment}"):
        rules.check_pretrainable(config, "source.yaml")


@pytest.mark.parametrize("key", sorted(rules.DATA_FILES_IGNORE))
def test_data_check_files_refuse_a_set_they_would_ignore(key):
    with pytest.raises(RnnclfError, match=f"^--set {key}=x: --data"):
        rules.check_data_files([f"{key}=x"])
    rules.check_data_files(["data.text_field=body", "tokenizer.kind=char"])  # what --data does use


def test_tune_may_not_search_what_it_compares_on():
    assert "what the search compares" in rules.unsearchable("train.metric")
    assert rules.unsearchable("data.train") and rules.unsearchable("data.max_length") is None
    assert rules.unsearchable("train.lr") is None
