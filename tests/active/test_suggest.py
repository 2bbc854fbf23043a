"""rnnclf suggest as a user runs it: the least sure texts of a pool, written ready to label in the run's training
format; texts the run has (exactly or nearly) skipped, repeats picked once, near-copies spread by diverse, random
seeded, a pool read in chunks giving the same picks; one-line mistakes that write nothing."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from tqdm import tqdm

from rnnclf.active import pool as pool_module
from rnnclf.active.pool import open_pool
from rnnclf.active.strategies import uncertainty
from rnnclf.active.suggest import Request, suggest
from rnnclf.check.known_texts import KnownTexts
from rnnclf.config.loading import load_config
from rnnclf.inference.predictor import Predictor
from rnnclf.recipes.classify import train

from helpers.cli import assert_user_error, rnnclf
from helpers.data import multi_label_task, topic_task, write_csv, write_jsonl

MODEL = (
    "embedding: {dim: 16}\nmodel: {encoder: gru, hidden_size: 16}\ntrain: {epochs: 2, batch_size: 16, num_threads: 1}\n"
)
LONG = "the council said on monday that the new rules for the harbour would take effect next spring after a long review"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A run trained on topic texts (and one long text); a pool with copies and a near-copy of its texts, repeats,
    and fresh texts."""
    folder = tmp_path_factory.mktemp("suggest")
    rows = topic_task(300, seed=1) + [(LONG, "money")]
    write_csv(folder / "train.csv", rows)
    (folder / "c.yaml").write_text("data: {train: train.csv}\n" + MODEL)
    train(load_config(folder / "c.yaml", [f"output.run_dir={folder / 'run'}"]), log=lambda line: None)
    fresh = [text for text, _ in topic_task(400, seed=7)]
    known = [text for text, _ in rows[:20]] + [LONG.replace("monday", "tuesday"), LONG.upper()]
    texts = fresh + known + fresh[:5]  # the first five again at the end: repeats
    write_csv(folder / "pool.csv", [(text,) for text in texts], header=("text",))
    (folder / "linear.yaml").write_text("data: {train: train.csv}\nmodel: {encoder: none, wide: true}\n")
    train(load_config(folder / "linear.yaml", [f"output.run_dir={folder / 'linear'}"]), log=lambda line: None)
    return folder


def pool_texts(ws: Path) -> list[str]:
    return [row["text"] for row in csv.DictReader((ws / "pool.csv").open())]


def run_suggest(ws: Path, out: str, *args: str) -> list[dict]:
    result = rnnclf("suggest", str(ws / "run"), "--pool", str(ws / "pool.csv"), "--out", str(ws / out), *args)
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader((ws / out).open()))


def test_margin_suggests_the_least_sure_texts_the_run_does_not_have(ws):
    rows = run_suggest(ws, "margin.csv", "--k", "30")
    assert list(rows[0]) == ["text", "label", "guess", "probability", "score", "line"]
    texts = pool_texts(ws)
    assert len(rows) == 30 and all(row["label"] == "" for row in rows)
    assert all(texts[int(row["line"]) - 2] == row["text"] for row in rows)  # line 1 is the header
    assert {row["guess"] for row in rows} <= {"money", "sport", "weather"}
    # an independent ranking: the model's margin on every pool text that is not the run's and not a repeat
    predictor = Predictor.load(ws / "run")
    training = {row["text"] for row in csv.DictReader((ws / "train.csv").open())}
    eligible = [text for i, text in enumerate(texts[:400]) if text not in training and text not in texts[:i]]
    scores = uncertainty(predictor.predict_proba(eligible), "margin")
    picked = {row["text"] for row in rows}
    assert picked <= set(eligible)
    picked_scores = [s for text, s in zip(eligible, scores, strict=True) if text in picked]
    others = [s for text, s in zip(eligible, scores, strict=True) if text not in picked]
    assert min(picked_scores) >= max(others) - 1e-6
    assert [float(row["score"]) for row in rows] == sorted((float(row["score"]) for row in rows), reverse=True)


def test_texts_the_run_has_are_skipped_and_repeats_suggested_once(ws):
    texts = pool_texts(ws)
    result = rnnclf("suggest", str(ws / "run"), "--pool", str(ws / "pool.csv"), "--k", "1000")
    assert_user_error(result, "--k 1000: the pool has", "5 repeats")
    most = int(result.stderr.split("the pool has ")[1].split()[0])
    rows = run_suggest(ws, "all.csv", "--k", str(most), "--strategy", "entropy")
    chosen = [row["text"] for row in rows]
    assert len(set(chosen)) == len(chosen) == most
    assert LONG.upper() not in chosen and LONG.replace("monday", "tuesday") not in chosen  # exact, near copy
    training = [row["text"] for row in csv.DictReader((ws / "train.csv").open())]
    assert not set(chosen) & set(training)
    left_out = set(texts[:400]) - set(chosen)  # fresh texts skipped: each is a copy or near-copy of a training one
    assert len(left_out) <= 10
    for text in left_out:
        assert max(jaccard(shingles(text), shingles(other)) for other in training) >= 0.6


def shingles(text: str) -> set:
    words = text.lower().split()
    return {tuple(words[i : i + 2]) for i in range(len(words) - 1)} or {tuple(words)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def test_diverse_spreads_its_picks_where_margin_takes_near_copies(ws, tmp_path):
    predictor = Predictor.load(ws / "run")
    # every text ends in a mark the run never saw (<unk>): copies ending in other such marks read the same to it
    texts = [f"{text} !" for text in pool_texts(ws)[:400]]
    unsure = texts[int(np.argmax(uncertainty(predictor.predict_proba(texts), "margin")))][:-2]
    copies = [f"{unsure} {mark}" for mark in "?#$%&*@^"]
    write_csv(tmp_path / "pool.csv", [(text,) for text in texts + copies], header=("text",))
    picks = {}
    for strategy in ("margin", "diverse"):
        out = tmp_path / f"{strategy}.csv"
        args = ["--pool", str(tmp_path / "pool.csv"), "--k", "10", "--strategy", strategy, "--out", str(out)]
        assert rnnclf("suggest", str(ws / "run"), *args).returncode == 0
        picks[strategy] = [row["text"] for row in csv.DictReader(out.open())]
    near = {strategy: sum(text.startswith(unsure) for text in chosen) for strategy, chosen in picks.items()}
    assert near["margin"] == 9, near  # the text and its 8 copies: the 9 least sure
    assert near["diverse"] == 1, near


def test_repeats_do_not_crowd_out_the_others(ws, tmp_path):
    """150 copies of the least sure text: suggested once, and k distinct texts still come out."""
    predictor = Predictor.load(ws / "run")
    texts = pool_texts(ws)[:400]
    unsure = texts[int(np.argmax(uncertainty(predictor.predict_proba(texts), "margin")))]
    write_csv(tmp_path / "pool.csv", [(text,) for text in [unsure] * 150 + texts], header=("text",))
    for strategy in ("margin", "diverse"):
        out = tmp_path / f"{strategy}.csv"
        args = ["--pool", str(tmp_path / "pool.csv"), "--k", "10", "--strategy", strategy, "--out", str(out)]
        assert rnnclf("suggest", str(ws / "run"), *args).returncode == 0
        chosen = [row["text"] for row in csv.DictReader(out.open())]
        assert len(chosen) == len(set(chosen)) == 10
        if strategy == "margin":
            assert chosen[0] == unsure  # the least sure, once


def test_random_is_seeded_and_reads_the_pool_only(ws):
    first = run_suggest(ws, "random1.csv", "--k", "25", "--strategy", "random", "--seed", "3")
    again = run_suggest(ws, "random2.csv", "--k", "25", "--strategy", "random", "--seed", "3")
    other = run_suggest(ws, "random3.csv", "--k", "25", "--strategy", "random", "--seed", "4")
    assert first == again and first != other
    assert all(int(row["line"]) - 2 < 400 for row in first)  # never the run's texts nor a repeat


def test_a_pool_read_in_small_chunks_gives_the_same_picks(ws, tmp_path, monkeypatch):
    def picks(name: str, strategy: str) -> list[str]:
        out = tmp_path / name
        request = Request(ws / "run", ws / "pool.csv", 15, strategy, out)
        pool = open_pool(ws / "pool.csv", "text", "label")
        suggest(request, Predictor.load(ws / "run"), pool, lambda line: None, tqdm(disable=True))
        return out.read_text().splitlines()

    whole = {strategy: picks(f"{strategy}-whole.csv", strategy) for strategy in ("margin", "diverse")}
    monkeypatch.setattr(pool_module, "CHUNK", 7)
    for strategy in ("margin", "diverse"):
        assert picks(f"{strategy}-chunks.csv", strategy) == whole[strategy]


def test_a_jsonl_multi_label_run_gets_jsonl_with_null_labels(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", multi_label_task(200, seed=1))
    config = "data: {train: train.jsonl, multi_label: true, label_field: labels}\n" + MODEL
    (tmp_path / "c.yaml").write_text(config)
    train(load_config(tmp_path / "c.yaml", [f"output.run_dir={tmp_path / 'run'}"]), log=lambda line: None)
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(text for text, _ in multi_label_task(80, seed=9)) + "\n")
    result = rnnclf("suggest", str(tmp_path / "run"), "--pool", str(pool), "--k", "12", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["suggested"] == 12
    rows = [json.loads(line) for line in (tmp_path / "pool-to-label.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(row["labels"] is None and isinstance(row["guess"], list) for row in rows)
    lines = pool.read_text().splitlines()
    assert all(lines[row["line"] - 1] == row["text"] for row in rows)


def test_known_texts_finds_what_brute_force_jaccard_finds():
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(300)]
    known = [" ".join(rng.choices(vocabulary, k=40)) for _ in range(200)]
    queries = []
    for text in known[:60]:  # each changed in 1 to 12 of its 40 words: some near, some not
        words = text.split()
        for at in rng.sample(range(40), rng.randint(1, 12)):
            words[at] = rng.choice(vocabulary)
        queries.append(" ".join(words))
    queries += [" ".join(rng.choices(vocabulary, k=40)) for _ in range(60)] + [known[5].upper(), ""]

    truth = [bool(q) and max(jaccard(shingles(q), shingles(k)) for k in known) >= 0.6 for q in queries]
    found = KnownTexts(known).seen(queries).tolist()
    assert sum(truth) >= 20 and found[-2] and not found[-1]
    assert [f for f, t in zip(found, truth, strict=True) if f and not t] == []  # confirmed exactly: no false hits
    assert sum(f and t for f, t in zip(found, truth, strict=True)) >= 0.95 * sum(truth)  # LSH finds nearly all


def untouched(ws: Path, out: Path, args: list[str], *fragments: str) -> None:
    before = sorted(path.name for path in ws.iterdir())
    assert_user_error(rnnclf("suggest", *args), *fragments)
    assert sorted(path.name for path in ws.iterdir()) == before and not out.exists()


def test_mistakes_are_one_line_and_write_nothing(ws, tmp_path):
    run, out = str(ws / "run"), tmp_path / "x.csv"
    (tmp_path / "empty.csv").write_text("text\n")
    (tmp_path / "blank.txt").write_text("\n\n")
    write_csv(tmp_path / "labelled.csv", [("a goal", "sport"), ("a loan", "money")])
    (tmp_path / "half.jsonl").write_text('{"text": "a goal"}\n{"text": "a loan", "label": "money"}\n')
    common = ["--out", str(out)]
    untouched(tmp_path, out, [run, "--pool", str(tmp_path / "empty.csv"), "--k", "2", *common], "no texts in it")
    untouched(tmp_path, out, [run, "--pool", str(tmp_path / "blank.txt"), "--k", "2", *common], "no texts in it")
    untouched(
        tmp_path, out, [run, "--pool", str(tmp_path / "labelled.csv"), "--k", "1", *common], "line 2: has a label"
    )
    untouched(tmp_path, out, [run, "--pool", str(tmp_path / "half.jsonl"), "--k", "1", *common], "line 2: has a label")
    untouched(tmp_path, out, [run, "--pool", str(tmp_path / "nope.csv"), "--k", "1", *common], "file not found")
    pool = str(ws / "pool.csv")
    untouched(tmp_path, out, [run, "--pool", pool, "--k", "1", "--out", str(tmp_path / "x.jsonl")], "name it *.csv")
    (tmp_path / "kept.csv").write_text("mine\n")
    untouched(tmp_path, out, [run, "--pool", pool, "--k", "1", "--out", str(tmp_path / "kept.csv")], "exists")
    assert (tmp_path / "kept.csv").read_text() == "mine\n"
    args = [str(ws / "linear"), "--pool", pool, "--k", "1", "--strategy", "diverse", *common]
    untouched(tmp_path, out, args, "no text vectors for --strategy diverse")
    untouched(tmp_path, out, [run, "--pool", pool, "--k", "0", *common], "--k")
    shutil.copytree(ws / "run", tmp_path / "unfinished")
    (tmp_path / "unfinished" / "metrics.json").unlink()
    args = [str(tmp_path / "unfinished"), "--pool", pool, "--k", "1", *common]
    untouched(tmp_path, out, args, "the run has not finished")
    write_csv(tmp_path / "scored.csv", topic_task(60, seed=4), header=("text", "score"))
    (tmp_path / "scored.yaml").write_text("data: {train: scored.csv, label_field: score}\n" + MODEL)
    train(load_config(tmp_path / "scored.yaml", [f"output.run_dir={tmp_path / 'scored'}"]), log=lambda line: None)
    args = [str(tmp_path / "scored"), "--pool", pool, "--k", "1", *common]
    untouched(tmp_path, out, args, "its data field 'score' is a column suggest adds")
