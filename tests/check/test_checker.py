"""rnnclf data check: each finding on planted problems, the MinHash against exact Jaccard and datasketch."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from rnnclf.check import minhash
from rnnclf.check.checker import check_data, check_inputs
from rnnclf.check.findings import normalise
from rnnclf.data import words as words_module

from helpers.data import multi_label_task, order_task, sentences, words, write_csv, write_jsonl


def run_check(paths: list[Path], overrides: list[str] | None = None, **fields) -> dict:
    splits, config, source = check_inputs(None, paths, overrides or [], fields)
    return check_data(splits, config, source)


def of_kind(report: dict, kind: str) -> list[dict]:
    return [item for item in report["findings"] if item["kind"] == kind]


def test_planted_problems_are_found_with_exact_counts_and_lines(planted):
    report = run_check([planted["train"], planted["test"]])
    empty = of_kind(report, "empty_texts")
    assert [item["count"] for item in empty] == [2]
    assert [example["line"] for example in empty[0]["examples"]] == [5, 12]
    duplicates = of_kind(report, "duplicates")
    assert [item["count"] for item in duplicates] == [2]
    later_copies = {(e["line"], e["same_as_line"]) for e in duplicates[0]["examples"]}
    assert later_copies == {(23, 22), (32, 22)}  # each later copy points at the first
    conflicts = of_kind(report, "conflicting_labels")
    assert [item["count"] for item in conflicts] == [1]
    assert {(e["file"], e["line"]) for e in conflicts[0]["examples"]} == {
        (str(planted["train"]), 52),
        (str(planted["test"]), 6),
    }
    exact = of_kind(report, "exact_overlap")
    assert [item["count"] for item in exact] == [5]  # four copies and the conflicting one
    near = of_kind(report, "near_overlap")
    assert [item["count"] for item in near] == [1]
    (example,) = near[0]["examples"]
    assert (example["line"], example["near_line"]) == (7, 57)
    assert (example["split"], example["near_split"], example["near_file"]) == ("test", "train", str(planted["train"]))
    labels = [e["label"] for e in conflicts[0]["examples"]]
    assert len(labels) == len(set(labels)) == 2  # one row per label of the conflicting text
    first, second = (set(zip(t.split(), t.split()[1:], strict=False)) for t in planted["near_pair"])
    assert example["jaccard"] == pytest.approx(len(first & second) / len(first | second), abs=1e-3)
    assert report["serious"] == len(empty) + len(conflicts) + len(exact) + len(near)


def test_unrelated_and_merely_similar_texts_are_not_near_duplicates(tmp_path):
    rng = random.Random(3)
    train = sentences(rng, 40)
    tokens = train[0].split()
    for i in (2, 6, 10, 14):  # four words of 16 changed: Jaccard 5/27, well under the threshold
        tokens[i] = "other"
    test = [*sentences(rng, 20), " ".join(tokens)]
    report = run_check(
        [
            write_csv(tmp_path / "train.csv", [(t, "ab"[i % 2]) for i, t in enumerate(train)]),
            write_csv(tmp_path / "test.csv", [(t, "ab"[i % 2]) for i, t in enumerate(test)]),
        ]
    )
    assert not of_kind(report, "near_overlap") and not of_kind(report, "exact_overlap")
    assert report["serious"] == 0


def test_minhash_estimate_agrees_with_exact_jaccard():
    rng = random.Random(11)
    base = words(rng, 40)
    texts, pairs = [" ".join(base)], []
    for changed in (1, 3, 6, 10, 20):
        tokens = list(base)
        for i in rng.sample(range(40), changed):
            tokens[i] = f"x{i}"
        texts.append(" ".join(tokens))
        pairs.append((0, len(texts) - 1))
    shingled = minhash.shingles(texts)
    signature = minhash.signatures(shingled)
    left, right = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    estimates = minhash.estimate(signature, left, right)
    for (a, b), estimated in zip(pairs, estimates, strict=True):
        exact = minhash.jaccard(shingled.of(a), shingled.of(b))
        bigrams = [set(zip(t.split(), t.split()[1:], strict=False)) for t in (texts[a], texts[b])]
        assert exact == pytest.approx(len(bigrams[0] & bigrams[1]) / len(bigrams[0] | bigrams[1]))
        assert abs(estimated - exact) < 0.2  # 60 permutations: standard error at most 0.065


def test_minhash_agrees_with_datasketch_on_the_same_shingles():
    datasketch = pytest.importorskip("datasketch")
    rng = random.Random(5)
    base = words(rng, 30)
    variants = [" ".join(base[:k] + words(rng, 30 - k)) for k in (29, 25, 20, 12)]
    texts = [" ".join(base), *variants]
    ours = minhash.signatures(minhash.shingles(texts))
    for i in range(1, len(texts)):
        theirs = []
        for text in (texts[0], texts[i]):
            tokens = text.split()
            signature = datasketch.MinHash(num_perm=minhash.PERMUTATIONS, seed=3)
            signature.update_batch([f"{a} {b}".encode() for a, b in zip(tokens, tokens[1:], strict=False)])
            theirs.append(signature)
        estimated = minhash.estimate(ours, np.array([0]), np.array([i]))[0]
        assert abs(estimated - theirs[0].jaccard(theirs[1])) < 0.25


def test_signatures_do_not_depend_on_the_python_hash_seed():
    code = (
        "from rnnclf.check import minhash as m; import hashlib; "
        "print(hashlib.sha256(m.signatures(m.shingles(['a b c d', 'the cat sat on the mat'])).tobytes()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": seed}, check=True
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def test_chunks_cut_inside_long_texts_give_the_same_shingles_and_signatures(monkeypatch):
    rng = random.Random(8)
    texts = [" ".join(words(rng, n)) for n in (300, 0, 1, 2, 45, 0, 700, 3)]
    whole = minhash.shingles(texts)
    signature = minhash.signatures(whole)
    monkeypatch.setattr(words_module, "CHAR_CHUNK", 100)  # a few words per chunk: the long texts are chunks alone
    monkeypatch.setattr(minhash, "SHINGLE_CHUNK", 7)  # every long text is cut in many places
    chunked = minhash.shingles(texts)
    assert len(words_module.text_chunks(texts)) > 3
    assert chunked.hashes.tolist() == whole.hashes.tolist() and chunked.offsets.tolist() == whole.offsets.tolist()
    assert np.array_equal(minhash.signatures(chunked), signature)
    expected = [
        min(((a * (h >> 32) + b) % 2**32 for h in whole.of(7)), default=0)
        for a, b in zip(*(p.tolist() for p in minhash._permutations()), strict=True)
    ]
    assert signature[7].tolist() == expected


def test_short_texts_are_one_shingle_and_empty_ones_none():
    shingled = minhash.shingles(["one", "", "two words", "three little words"])
    assert np.diff(shingled.offsets).tolist() == [1, 0, 1, 2]


def test_labels_unseen_missing_and_imbalance(tmp_path):
    rng = random.Random(1)
    texts = sentences(rng, 130, size=6)
    train = [(t, "big") for t in texts[:100]] + [(t, "small") for t in texts[100:105]] + [(texts[105], "mid")]
    test = [(t, "big") for t in texts[110:120]] + [(texts[120], "new")]
    report = run_check([write_csv(tmp_path / "a.csv", train), write_csv(tmp_path / "b.csv", test)])
    assert report["labels"]["a"] == {"big": 100, "small": 5, "mid": 1}
    assert report["labels"]["b"] == {"big": 10, "new": 1}
    (unseen,) = of_kind(report, "unseen_labels")
    assert unseen["severity"] == "serious" and "new" in unseen["message"]
    assert [(e["file"], e["line"], e["label"]) for e in unseen["examples"]] == [(str(tmp_path / "b.csv"), 12, "new")]
    (missing,) = of_kind(report, "labels_missing_from_split")
    assert missing["count"] == 2 and "mid, small" in missing["message"]
    assert {e["label"] for e in missing["examples"]} == {"mid", "small"}
    (imbalance,) = of_kind(report, "imbalance")
    assert "train.class_weights: balanced" in imbalance["message"] and "100x" in imbalance["message"]
    assert [(e["line"], e["label"]) for e in imbalance["examples"]] == [(107, "mid")]  # the smallest class's row


def test_one_class_is_serious(tmp_path):
    report = run_check([write_csv(tmp_path / "one.csv", [(t, "only") for t in sentences(random.Random(2), 5)])])
    (item,) = of_kind(report, "too_few_labels")
    assert item["severity"] == "serious" and report["serious"] == 1
    assert [(e["line"], e["label"]) for e in item["examples"]] == [(2, "only"), (3, "only"), (4, "only")]


def test_lengths_cut_padding_and_oov(tmp_path):
    from rnnclf.data.batching import bucket_by_length

    rng = random.Random(2)
    vocab = words(rng, 50)
    sizes = [rng.randint(1, 30) for _ in range(300)]
    train = [(" ".join(rng.choices(vocab, k=n)), "ab"[i % 2]) for i, n in enumerate(sizes)]
    test = [(" ".join(rng.choices(vocab, k=8) + ["unknownone", "unknowntwo"]), "a") for _ in range(10)]
    overrides = ["data.max_length=20", "train.batch_size=16", "train.seed=4"]
    report = run_check([write_csv(tmp_path / "train.csv", train), write_csv(tmp_path / "test.csv", test)], overrides)
    lengths = report["tokens"]["lengths"]["train"]
    for q in (50, 90, 95, 99):
        assert lengths[f"p{q}"] == np.percentile(sizes, q, method="nearest")  # whole tokens
    assert lengths["max"] == max(sizes)
    assert lengths["cut_share"] == pytest.approx(np.mean(np.array(sizes) > 20))
    clipped = np.minimum(sizes, 20)
    batches = bucket_by_length(clipped, 16, 4, 0)
    padded = sum(clipped[b].max() * len(b) for b in batches)
    assert lengths["padding_share"] == pytest.approx(1 - clipped.sum() / padded)
    assert report["tokens"]["oov"]["test"] == pytest.approx(0.2)
    assert report["tokens"]["oov"]["train"] == 0
    (truncated,) = of_kind(report, "truncated")
    assert truncated["count"] == sum(n > 20 for n in sizes)
    longest = sorted(range(len(sizes)), key=lambda i: -sizes[i])[:3]
    assert [(e["line"], e["tokens"]) for e in truncated["examples"]] == [(i + 2, sizes[i]) for i in longest]
    assert "model.chunk reads long texts in windows" in truncated["message"] and "most_windows" not in lengths
    # read in windows of 6 tokens: the finding says so, and how many texts span several windows
    windowed = run_check([tmp_path / "train.csv", tmp_path / "test.csv"], [*overrides, "model.chunk=6"])
    in_windows = windowed["tokens"]["lengths"]["train"]
    assert in_windows["multi_window_share"] == pytest.approx(np.mean(clipped > 6))
    assert in_windows["most_windows"] == -(-clipped.max() // 6)
    assert "read in windows of model.chunk 6 tokens" in of_kind(windowed, "truncated")[0]["message"]


def test_pretrained_coverage_and_a_missing_vectors_package(tmp_path, monkeypatch):
    rng = random.Random(4)
    vocab = words(rng, 10)
    train = [(" ".join(vocab[:5] if i % 2 else vocab[5:]), "ab"[i % 2]) for i in range(10)]
    path = write_csv(tmp_path / "train.csv", train)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("".join(f"{word} 0.1 0.2 0.3\n" for word in vocab[:4]))  # 4 of 10 words, 4 of 50 tokens x5
    report = run_check([path], [f"embedding.pretrained={vectors}", "embedding.dim=3"])
    pretrained = report["tokens"]["pretrained"]
    assert pretrained["vocab_coverage"] == pytest.approx(0.4) and pretrained["token_coverage"] == pytest.approx(0.4)

    import rnnclf.models.embeddings

    def missing(name):
        raise ImportError(name)

    monkeypatch.setattr(rnnclf.models.embeddings.importlib, "import_module", missing)
    report = run_check([path], ["embedding.pretrained=glove-6b-50d", "embedding.dim=50"])
    assert "pip install 'rnnclf[glove]'" in report["tokens"]["pretrained"]["note"]


def test_multi_label_statistics(tmp_path):
    rows = multi_label_task(400, seed=3)
    report = run_check([write_jsonl(tmp_path / "train.jsonl", rows)], label_field="labels", multi_label=True)
    stats = report["multi_label"]["train"]
    assert stats["cardinality"] == pytest.approx(np.mean([len(labels) for _, labels in rows]))
    assert stats["no_label"] == sum(not labels for _, labels in rows)
    pairs = Counter(pair for _, labels in rows for pair in combinations(sorted(labels), 2))
    assert stats["top_pairs"][0][2] == pairs.most_common(1)[0][1]
    assert of_kind(report, "no_label")[0]["count"] == stats["no_label"]
    assert report["labels"]["train"]["rare"] == sum("rare" in labels for _, labels in rows)


def test_carved_validation_is_the_one_training_carves(tmp_path):
    from rnnclf.config.loading import load_config
    from rnnclf.data.corpus import load_corpus

    write_csv(tmp_path / "train.csv", order_task(300, seed=5))
    (tmp_path / "config.yaml").write_text("data: {train: train.csv, valid_fraction: 0.2}\ntrain: {seed: 9}\n")
    config = load_config(tmp_path / "config.yaml")
    splits, _, _ = check_inputs(tmp_path / "config.yaml", [], [], {})
    assert [split.name for split in splits] == ["train", "valid"]
    corpus = load_corpus(config.data, config.train.seed)
    assert splits[1].lines.tolist() == list(corpus.valid.rows)
    assert splits[0].lines.tolist() == list(corpus.train.rows)


def test_normalisation_for_exact_overlap():
    assert normalise("  The\u00a0CAFÉ\tclosed ") == normalise("the café closed") == "the café closed"
