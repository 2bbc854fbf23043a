"""rnnclf cv: folds that are ordinary runs, the summary and out-of-fold probabilities checked against the runs
themselves, continuing after an interruption, planted label errors found, and one-line mistakes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from rnnclf.config.loading import load_config
from rnnclf.recipes.classify import resume, train
from rnnclf.recipes.cv import plan_cv, run_cv
from rnnclf.recipes.cv_summary import summarize

from helpers.cli import assert_user_error, rnnclf
from helpers.data import multi_label_task, order_task, write_csv, write_jsonl

TINY = (
    "embedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\ntrain: {epochs: 2, batch_size: 32, num_threads: 1}\n"
)
LINEAR = "model: {encoder: none, wide: true}\n"
TOPIC_WORDS = {
    "sport": ["match", "goal", "team"],
    "money": ["bank", "profit", "loan"],
    "rain": ["storm", "wind", "wet"],
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict:
    """A 3-fold cross-validation of a tiny GRU, run as a user runs it."""
    folder = tmp_path_factory.mktemp("cv")
    train_file = write_csv(folder / "train.csv", order_task(300, seed=1))
    test_file = write_csv(folder / "test.csv", order_task(60, seed=2))
    (folder / "c.yaml").write_text(f"data: {{train: {train_file}, test: {test_file}}}\n" + TINY)
    result = rnnclf("cv", "--config", str(folder / "c.yaml"), "--folds", "3", "--out", str(folder / "out"))
    assert result.returncode == 0, result.stderr
    return {"folder": folder, "out": folder / "out", "stdout": result.stdout, "train": train_file}


def test_summary_is_the_folds_own_scores(finished):
    out = finished["out"]
    summary = json.loads((out / "summary.json").read_text())
    accuracies = [
        json.loads((out / "seed0" / f"fold{k}" / "metrics.json").read_text())["test"]["accuracy"] for k in range(3)
    ]
    assert summary["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert summary["std"]["accuracy"] == pytest.approx(np.std(accuracies, ddof=1))
    assert [row["accuracy"] for row in summary["runs"]] == pytest.approx(accuracies)
    table = (out / "summary.md").read_text()
    assert table.count("\n| 0 | ") == 3 and "mean ± std" in table
    assert json.loads(finished["stdout"])["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))


def test_out_of_fold_probabilities_come_from_the_run_that_never_saw_the_text(finished):
    out = finished["out"]
    lines = (out / "oof.jsonl").read_text().splitlines()
    header, records = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert header["labels"] == ["neg", "pos"]
    assert sorted(record["line"] for record in records) == list(range(2, 302))  # every text once (line 1: header)
    texts = {i + 2: text for i, (text, _) in enumerate(order_task(300, seed=1))}
    for fold in range(3):
        mine = [record for record in records if record["folds"] == [fold]][:4]
        assert len(mine) == 4
        shown = rnnclf(
            "predict",
            str(out / "seed0" / f"fold{fold}"),
            *[texts[r["line"]] for r in mine],
            "--top-k",
            "2",
            "--format",
            "json",
        )
        for record, line in zip(mine, shown.stdout.splitlines(), strict=True):
            probs = {item["label"]: item["probability"] for item in json.loads(line)["top"]}
            assert record["probs"] == pytest.approx([probs["neg"], probs["pos"]], abs=2e-6)
        # the fold's run trained on none of the texts it was tested on
        config = load_config(out / "seed0" / f"fold{fold}" / "config.yaml")
        from rnnclf.data.corpus import load_corpus

        corpus = load_corpus(config.data, config.train.seed)
        assert set(corpus.test.rows) == {r["line"] for r in records if r["folds"] == [fold]}
        assert not set(corpus.test.rows) & set(corpus.train.rows)


def test_the_same_command_again_keeps_every_finished_fold(finished):
    out = finished["out"]
    before = {path: path.stat().st_mtime_ns for path in out.glob("seed0/fold*/model.safetensors")}
    result = rnnclf("cv", "--config", str(finished["folder"] / "c.yaml"), "--folds", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "fold 1 of 3" not in result.stderr  # nothing trained
    assert {path: path.stat().st_mtime_ns for path in out.glob("seed0/fold*/model.safetensors")} == before


def test_a_cv_begun_before_a_key_existed_continues(finished):
    """A newer rnnclf's key, at its default, is not "another config" for a cross-validation begun without it."""
    record = json.loads((finished["out"] / "cv.json").read_text())
    del record["config"]["train"]["conformal"]
    (finished["out"] / "cv.json").write_text(json.dumps(record))
    result = rnnclf("cv", "--config", str(finished["folder"] / "c.yaml"), "--folds", "3", "--out", str(finished["out"]))
    assert result.returncode == 0, result.stderr
    changed = rnnclf(
        "cv",
        "--config",
        str(finished["folder"] / "c.yaml"),
        "--folds",
        "3",
        "--out",
        str(finished["out"]),
        "--set",
        "train.conformal=aps",
    )
    assert_user_error(changed, "another config")


class Stop(Exception):
    pass


def test_an_interrupted_cv_continues_where_it_stopped(tmp_path):
    """Fold 0 finished, fold 1 stopped after its first epoch (state saved): the next run keeps fold 0, resumes fold
    1 from its state, and trains fold 2."""
    write_csv(tmp_path / "train.csv", order_task(240, seed=3))
    (tmp_path / "c.yaml").write_text(f"data: {{train: {tmp_path / 'train.csv'}}}\n" + TINY)
    plan = plan_cv(tmp_path / "c.yaml", [], 3, None, tmp_path / "out")
    calls: list[tuple[str, str]] = []

    def stop_after_first(epoch, score, last):
        raise Stop

    def interrupted(run_dir: Path, overrides):
        calls.append(("train", run_dir.name))
        hook = stop_after_first if run_dir.name == "fold1" else None
        train(load_config(plan.config_path, overrides), log=lambda line: None, on_epoch=hook)

    with pytest.raises(Stop):
        run_cv(plan, interrupted, log=lambda line: None)
    assert (tmp_path / "out" / "seed0" / "fold0" / "metrics.json").exists()
    assert not (tmp_path / "out" / "seed0" / "fold1" / "metrics.json").exists()

    def again(run_dir: Path, overrides):
        if overrides is None:
            calls.append(("resume", run_dir.name))
            resume(run_dir, log=lambda line: None)
        else:
            calls.append(("train", run_dir.name))
            train(load_config(plan.config_path, overrides), log=lambda line: None)

    plan = plan_cv(tmp_path / "c.yaml", [], 3, None, tmp_path / "out")
    run_cv(plan, again, log=lambda line: None)
    assert calls == [("train", "fold0"), ("train", "fold1"), ("resume", "fold1"), ("train", "fold2")]
    summarize(plan, log=lambda line: None)
    assert len(json.loads((tmp_path / "out" / "summary.json").read_text())["runs"]) == 3


def flipped_topic_task(tmp_path: Path, n: int = 600, share: float = 0.05) -> tuple[Path, set[int]]:
    """Texts naming their topic twice among filler words, with `share` of the labels flipped to another topic; the
    flipped lines."""
    rng = random.Random(11)
    topics, rows = sorted(TOPIC_WORDS), []
    for _ in range(n):
        topic = rng.choice(topics)
        words = rng.sample(TOPIC_WORDS[topic], 2) + [
            rng.choice(["the", "a", "it", "was", "and", "so"]) for _ in range(5)
        ]
        rng.shuffle(words)
        rows.append((" ".join(words), topic))
    flipped = set(rng.sample(range(n), round(share * n)))
    for i in flipped:
        rows[i] = (rows[i][0], rng.choice([t for t in topics if t != rows[i][1]]))
    return write_csv(tmp_path / "noisy.csv", rows), {i + 2 for i in flipped}


def test_planted_label_errors_are_found_and_shown_by_data_check(tmp_path):
    train_file, planted = flipped_topic_task(tmp_path)
    (tmp_path / "c.yaml").write_text(f"data: {{train: {train_file}}}\n" + LINEAR)
    result = rnnclf("cv", "--config", str(tmp_path / "c.yaml"), "--folds", "4", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    found = json.loads((tmp_path / "out" / "label_errors.json").read_text())["errors"]
    lines = {row["line"] for row in found}
    assert len(lines & planted) / len(lines) >= 0.8 and len(lines & planted) / len(planted) >= 0.7
    assert all(row["where"] == f"{train_file}:{row['line']}" for row in found)
    shown = rnnclf(
        "data",
        "check",
        "--config",
        str(tmp_path / "c.yaml"),
        "--label-errors",
        str(tmp_path / "out"),
        "--format",
        "json",
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert [row["line"] for row in report["label_errors"]] == [row["line"] for row in found]
    finding = next(item for item in report["findings"] if item["kind"] == "label_errors")
    assert finding["examples"][0]["line"] == found[0]["line"] and finding["examples"][0]["text"]


def test_data_check_refuses_a_cv_of_other_data(finished, tmp_path):
    other = write_csv(tmp_path / "other.csv", order_task(300, seed=9))
    (tmp_path / "o.yaml").write_text(f"data: {{train: {other}}}\n" + TINY)
    result = rnnclf("data", "check", "--config", str(tmp_path / "o.yaml"), "--label-errors", str(finished["out"]))
    assert_user_error(result, "a cross-validation of other training data")
    result = rnnclf("data", "check", "--config", str(tmp_path / "o.yaml"), "--label-errors", str(tmp_path))
    assert_user_error(result, "not a cross-validation folder")


def test_multi_label_cv(tmp_path):
    rows = multi_label_task(299, seed=4) + [("a comet and a solo song", ["solo"])]  # one fold's runs lack "solo"
    write_jsonl(tmp_path / "train.jsonl", rows, label_field="label")
    (tmp_path / "m.yaml").write_text(f"data: {{train: {tmp_path / 'train.jsonl'}, multi_label: true}}\n" + LINEAR)
    result = rnnclf(
        "cv", "--config", str(tmp_path / "m.yaml"), "--folds", "3", "--out", str(tmp_path / "out"), "--seeds", "0,1"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["runs"]) == 6 and "micro_f1" in summary["mean"]
    records = [json.loads(line) for line in (tmp_path / "out" / "oof.jsonl").read_text().splitlines()[1:]]
    assert len(records) == 300 and all(len(record["folds"]) == 2 for record in records)
    assert records[0]["label"] == rows[0][1]
    header = json.loads((tmp_path / "out" / "oof.jsonl").read_text().splitlines()[0])
    assert "solo" in header["labels"] and len(records[-1]["probs"]) == len(header["labels"])


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--folds", "1"], "at least 2 folds"),
        (["--folds", "200"], "use at most"),
        (["--folds", "3", "--set", "data.folds=3", "--set", "data.fold=0"], "data.folds is set by rnnclf cv"),
        (["--folds", "3", "--seeds", "a,b"], "--seeds a,b"),
    ],
)
def test_mistakes_are_one_line_and_write_nothing(finished, tmp_path, extra, fragment):
    result = rnnclf("cv", "--config", str(finished["folder"] / "c.yaml"), "--out", str(tmp_path / "new"), *extra)
    assert_user_error(result, fragment)
    assert not (tmp_path / "new").exists()


def test_a_folder_of_another_cross_validation_is_refused_and_kept(finished):
    out = finished["out"]
    before = (out / "cv.json").read_text()
    config = str(finished["folder"] / "c.yaml")
    assert_user_error(
        rnnclf("cv", "--config", config, "--folds", "3", "--out", str(out), "--set", "train.lr=0.1"), "another config"
    )
    assert_user_error(rnnclf("cv", "--config", config, "--folds", "4", "--out", str(out)), "other --folds")
    assert (out / "cv.json").read_text() == before


@pytest.mark.slow
def test_each_fold_in_two_processes(tmp_path):
    write_csv(tmp_path / "train.csv", order_task(200, seed=5))
    (tmp_path / "c.yaml").write_text(f"data: {{train: {tmp_path / 'train.csv'}}}\n" + TINY)
    result = rnnclf(
        "cv", "--config", str(tmp_path / "c.yaml"), "--folds", "2", "--out", str(tmp_path / "out"), "--nproc", "2"
    )
    assert result.returncode == 0, result.stderr
    env = json.loads((tmp_path / "out" / "seed0" / "fold1" / "env.json").read_text())
    assert env["processes"] == 2
    assert len((tmp_path / "out" / "oof.jsonl").read_text().splitlines()) == 201
