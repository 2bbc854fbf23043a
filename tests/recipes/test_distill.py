"""train.teacher in-process: teacher files read strictly, the teacher's outputs computed once (cached), texts
without gold labels joining training, the teacher driving what the student learns, resume and its record."""

import json
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file

import rnnclf.recipes.teacher as teacher_module
from rnnclf.config.loading import load_config
from rnnclf.errors import RnnclfError
from rnnclf.recipes.classify import resume, train
from rnnclf.recipes.distill import augment
from rnnclf.recipes.teacher import read_teacher_file

from helpers.data import order_task, write_csv

LABELS = ["neg", "pos"]


def quiet(line: str) -> None:
    pass


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """How many times a run or ensemble teacher predicted, with a cache of this test's own."""
    monkeypatch.setenv("RNNCLF_CACHE", str(tmp_path / "cache"))
    calls = []
    real = teacher_module.predict_teacher

    def counting(teacher, texts, *args, **kwargs):
        calls.append(len(texts))
        return real(teacher, texts, *args, **kwargs)

    monkeypatch.setattr(teacher_module, "predict_teacher", counting)
    return calls


class Stop(Exception):
    """Raised by stop_after_first: the run stops as if killed after its first epoch was saved."""


def stop_after_first(epoch, score, last):
    if epoch == 1:
        raise Stop


def student(folder, name, *overrides, on_epoch=None, log=quiet):
    config = load_config(folder / "config.yaml", [f"output.run_dir={folder / name}", *overrides])
    return train(config, command=["test"], log=log, on_epoch=on_epoch)


def test_teacher_file_rows_by_text_or_id_with_probs_or_logits(tmp_path):
    rows = [
        {"text": "a b", "probs": {"pos": 0.75, "neg": 0.25}},
        {"id": 7, "logits": {"neg": 1.0, "pos": -1.0}},
        {"text": "only pos", "probs": {"pos": 2 / 3}},  # a left-out label has probability 0: normalised
    ]
    file = tmp_path / "teacher.jsonl"
    file.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    logits = read_teacher_file(file, ["a b", "unknown text", "only pos"], [3, 7, None], LABELS, False)
    np.testing.assert_allclose(logits[0], np.log([0.25, 0.75]), rtol=1e-6)
    np.testing.assert_allclose(logits[1], [1.0, -1.0])
    assert logits[2].argmax() == 1 and np.exp(logits[2]).sum() == pytest.approx(1.0)
    multi = read_teacher_file(file, ["a b"], [None], LABELS, True)
    np.testing.assert_allclose(multi[0], [np.log(0.25 / 0.75), np.log(0.75 / 0.25)], rtol=1e-6)


@pytest.mark.parametrize(
    "row, message",
    [
        ("not json", "line 2: not a JSON object"),
        ('{"probs": {"pos": 1}}', 'line 2: needs "text"'),
        ('{"text": "x", "probs": {"pos": 1}, "logits": {"pos": 1}}', 'one of "probs" or "logits"'),
        ('{"text": "x", "probs": {"maybe": 1}}', "label 'maybe' is not in the training data"),
        ('{"text": "x", "probs": {"pos": 1.5}}', "between 0 and 1"),
        ('{"text": "x", "logits": {"pos": 1}}', "no logit for label 'neg'"),
        ('{"text": "x", "logits": {"pos": "high", "neg": 0}}', "finite number"),
    ],
)
def test_teacher_file_mistakes_name_the_file_and_row(tmp_path, row, message):
    file = tmp_path / "teacher.jsonl"
    file.write_text('{"text": "a", "probs": {"pos": 1}}\n' + row + "\n")
    with pytest.raises(RnnclfError, match=message) as caught:
        read_teacher_file(file, ["a"], [None], LABELS, False)
    assert str(file) in str(caught.value)


def test_a_text_the_teacher_file_misses_is_named(tmp_path):
    file = tmp_path / "teacher.jsonl"
    file.write_text('{"text": "a", "probs": {"pos": 1}}\n')
    with pytest.raises(RnnclfError, match="no row for the text 'b' \\(line 9 of data.train\\)"):
        read_teacher_file(file, ["a", "b"], [None, 9], LABELS, False)


def test_augmented_copies_are_seeded_and_drop_words():
    texts = [" ".join(f"w{i}" for i in range(40)), "one two"]
    first, again = augment(texts, 3, seed=0), augment(texts, 3, seed=0)
    assert first == again and len(first) == 6 and first != augment(texts, 3, seed=1)
    for copy in first[::2]:
        words = copy.split()
        assert 0 < len(words) < 40 and set(words) <= set(texts[0].split())
        assert words == sorted(words, key=lambda w: int(w[1:]))  # the order of the words is kept


def test_the_teacher_predicts_once_and_unlabelled_texts_join_training(ensemble_workspace, tmp_path, counted):
    shutil.copy(ensemble_workspace / "train.csv", tmp_path)
    shutil.copy(ensemble_workspace / "test.csv", tmp_path)
    (tmp_path / "more.txt").write_text("\n".join(text for text, _ in order_task(150, seed=40)) + "\n")
    (tmp_path / "config.yaml").write_text(
        (ensemble_workspace / "config.yaml").read_text().replace("epochs: 2", "epochs: 3")
    )
    teacher = ensemble_workspace / "m0"
    options = [f"train.teacher={teacher}", "train.teacher_augment=1", f"data.unlabelled=[{tmp_path / 'more.txt'}]"]
    summary = student(tmp_path, "s", *options)
    assert counted == [640 + 150 + 640]  # once, for every text: 640 gold (800 less a fifth), 150 more, 640 copies
    assert summary["sizes"]["train"] == 1430
    assert summary["teacher"]["texts"] == {"gold": 640, "unlabelled": 150, "augmented": 640}
    assert summary["teacher"]["kind"] == "run" and summary["teacher"]["path"] == str(teacher)
    env = json.loads((tmp_path / "s" / "env.json").read_text())
    assert env["teacher"]["digest"] == summary["teacher"]["digest"] and len(env["teacher"]["digest"]) == 64
    student(tmp_path, "again", *options)  # another run with the same teacher and texts: from the cache
    assert len(counted) == 1


def test_a_resumed_student_ends_as_one_never_interrupted(ensemble_workspace, tmp_path, counted):
    shutil.copy(ensemble_workspace / "train.csv", tmp_path)
    (tmp_path / "config.yaml").write_text(
        (ensemble_workspace / "config.yaml")
        .read_text()
        .replace(", test: test.csv", "")
        .replace("epochs: 2", "epochs: 3")
    )
    options = [f"train.teacher={ensemble_workspace / 'm1'}", "train.teacher_augment=1"]
    student(tmp_path, "whole", *options)

    with pytest.raises(Stop):
        student(tmp_path, "cut", *options, on_epoch=stop_after_first)
    resume(tmp_path / "cut", command=["test"], log=quiet)
    assert len(counted) == 1  # the resumed run read the cache
    whole, cut = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all((whole[key] == cut[key]).all() for key in whole)


def test_a_resumed_student_refuses_a_changed_teacher(ensemble_workspace, tmp_path, counted):
    shutil.copy(ensemble_workspace / "train.csv", tmp_path)
    (tmp_path / "config.yaml").write_text(
        (ensemble_workspace / "config.yaml").read_text().replace(", test: test.csv", "")
    )
    teacher = tmp_path / "teacher"
    shutil.copytree(ensemble_workspace / "m0", teacher)

    with pytest.raises(Stop):
        student(tmp_path, "cut", f"train.teacher={teacher}", on_epoch=stop_after_first)
    calibration = json.loads((teacher / "calibration.json").read_text())
    (teacher / "calibration.json").write_text(json.dumps(calibration | {"temperature": 1.5}))
    with pytest.raises(RnnclfError, match="changed since the run"):
        resume(tmp_path / "cut", command=["test"], log=quiet)


def test_the_teacher_decides_what_the_student_learns(tmp_path, monkeypatch):
    """A teacher that says the opposite of every gold label: with the teacher alone (weight 1, and validation
    labelled the teacher's way) the student learns the opposite of the task; with the gold labels alone (weight 0)
    the task."""
    monkeypatch.setenv("RNNCLF_CACHE", str(tmp_path / "cache"))
    rows, test = order_task(600, seed=30), order_task(200, seed=31)
    opposite = {"pos": "neg", "neg": "pos"}
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", test)
    write_csv(tmp_path / "flipped.csv", [(text, opposite[label]) for text, label in test])
    flipped = [{"text": text, "probs": {opposite[label]: 0.95}} for text, label in rows]
    (tmp_path / "teacher.jsonl").write_text("\n".join(json.dumps(row) for row in flipped) + "\n")
    (tmp_path / "config.yaml").write_text(
        "data: {train: train.csv, test: test.csv}\nembedding: {dim: 16}\n"
        "model: {encoder: gru, hidden_size: 24}\ntrain: {epochs: 6, batch_size: 32, lr: 0.01, num_threads: 1}\n"
    )
    accuracy = {}
    for weight, valid in ((0.0, "test.csv"), (1.0, "flipped.csv")):
        options = [f"train.teacher={tmp_path / 'teacher.jsonl'}", f"train.teacher_weight={weight}"]
        run = student(tmp_path, f"w{weight}", *options, f"data.valid={tmp_path / valid}")
        accuracy[weight] = run["test"]["accuracy"]
    assert accuracy[0.0] > 0.9 and accuracy[1.0] < 0.1, accuracy


def test_a_teacher_with_other_labels_or_task_is_refused(ensemble_workspace, multi_label_workspace, tmp_path):
    shutil.copy(ensemble_workspace / "train.csv", tmp_path)
    (tmp_path / "config.yaml").write_text(
        (ensemble_workspace / "config.yaml").read_text().replace(", test: test.csv", "")
    )
    with pytest.raises(RnnclfError, match="multi-label teacher for single-label data"):
        student(tmp_path, "a", f"train.teacher={multi_label_workspace / 'run'}")
    with pytest.raises(RnnclfError, match="train.teacher: .*nowhere: not found"):
        student(tmp_path, "b", f"train.teacher={tmp_path / 'nowhere'}")
    (tmp_path / "t.csv").write_text("text,label\n")
    with pytest.raises(RnnclfError, match="a teacher file is JSONL"):
        student(tmp_path, "c", f"train.teacher={tmp_path / 't.csv'}")


def test_a_teacher_file_may_name_training_rows_by_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCLF_CACHE", str(tmp_path / "cache"))
    rows = order_task(300, seed=32)
    write_csv(tmp_path / "train.csv", rows)  # the header is line 1: row i starts on line i + 2
    keyed = [{"id": i + 2, "probs": {label: 0.9}} for i, (_, label) in enumerate(rows)]
    (tmp_path / "teacher.jsonl").write_text("\n".join(json.dumps(row) for row in keyed) + "\n")
    (tmp_path / "config.yaml").write_text(
        "data: {train: train.csv}\nembedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\n"
        "train: {epochs: 1, num_threads: 1}\n"
    )
    summary = student(tmp_path, "s", f"train.teacher={tmp_path / 'teacher.jsonl'}")
    assert summary["teacher"]["kind"] == "file" and summary["teacher"]["texts"]["gold"] == 270


@pytest.mark.parametrize("loss", ["kl", "mse"])
def test_a_multi_label_student_learns_from_a_multi_label_teacher(multi_label_workspace, tmp_path, monkeypatch, loss):
    monkeypatch.setenv("RNNCLF_CACHE", str(tmp_path / "cache"))
    for name in ("train.jsonl", "test.jsonl"):
        shutil.copy(multi_label_workspace / name, tmp_path)
    (tmp_path / "config.yaml").write_text(
        (multi_label_workspace / "ml.yaml").read_text().replace("epochs: 5", "epochs: 3")
    )
    options = [
        f"train.teacher={multi_label_workspace / 'run'}",
        f"train.teacher_loss={loss}",
        "train.teacher_augment=1",
    ]
    summary = student(tmp_path, "s", *options)
    teacher = json.loads((multi_label_workspace / "run" / "metrics.json").read_text())
    assert summary["multi_label"] and summary["teacher"]["texts"]["augmented"] == summary["teacher"]["texts"]["gold"]
    assert summary["test"]["micro_f1"] > teacher["test"]["micro_f1"] - 0.1, (summary["test"], teacher["test"])


def test_an_ensemble_teacher_whose_member_changed_is_refused_even_when_cached(ensemble_workspace, tmp_path, counted):
    from rnnclf.recipes.ensemble import make_ensemble

    shutil.copy(ensemble_workspace / "train.csv", tmp_path)
    (tmp_path / "config.yaml").write_text(
        (ensemble_workspace / "config.yaml")
        .read_text()
        .replace(", test: test.csv", "")
        .replace("epochs: 2", "epochs: 1")
    )
    member = tmp_path / "m1"
    shutil.copytree(ensemble_workspace / "m1", member)
    make_ensemble([ensemble_workspace / "m0", member], tmp_path / "ens", quiet, "cpu")
    assert student(tmp_path, "a", f"train.teacher={tmp_path / 'ens'}")["teacher"]["kind"] == "ensemble"
    assert len(counted) == 1
    calibration = json.loads((member / "calibration.json").read_text())
    (member / "calibration.json").write_text(json.dumps(calibration | {"temperature": 1.5}))
    with pytest.raises(RnnclfError, match="changed since the ensemble was made"):
        student(tmp_path, "b", f"train.teacher={tmp_path / 'ens'}")
