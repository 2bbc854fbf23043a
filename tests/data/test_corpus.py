import json
from collections import Counter

import pytest

from rnnclf.config.schema import DataConfig
from rnnclf.data.corpus import load_corpus, stratified_split
from rnnclf.data.readers import FileTexts, Split, read_split
from rnnclf.data.tokenizer import encode, fit_tokenizer
from rnnclf.errors import RnnclfError

from helpers.data import write_csv


def test_csv_with_bom_crlf_quotes_and_newlines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes('\ufefftext,label\r\n"hello, ""world""\nsecond line",pos\r\nplain,neg\r\n'.encode())
    split = read_split(path)
    assert split.texts == ['hello, "world"\nsecond line', "plain"]
    assert split.labels == ["pos", "neg"]


def test_tsv_and_jsonl_with_numeric_labels(tmp_path):
    tsv = tmp_path / "d.tsv"
    tsv.write_text("label\ttext\n1\tone\n2\ttwo\n", encoding="utf-8")
    assert read_split(tsv).labels == ["1", "2"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 2.0}\n', encoding="utf-8")
    assert read_split(jsonl).labels == ["1", "2"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", b"body,label\nx,1\n", "no column 'text' in the header (columns: body, label)"),
        ("a.csv", b"text,label\nx,1\n,2\n", "line 3: empty text"),
        ("a.csv", b"text,label\nx,\n", "line 2: missing label"),
        ("a.csv", b"", "file is empty"),
        ("a.csv", b"text,label\n", "no rows of data"),
        ("a.csv", b"text,label\nok,1\n\xff\xfe bad,2\n", "line 3: not UTF-8"),
        ("a.csv", b"text,label\na,b,c\n", "line 2: 3 fields, header has 2"),
        ("a.jsonl", b'{"text": "a", "label": 1}\n{"text": "b"\n', "line 2: invalid JSON"),
        ("a.jsonl", b'{"txt": "a", "label": 1}\n', "line 1: no key 'text'"),
        ("a.jsonl", b"[1, 2]\n", "line 1: expected a JSON object"),
        ("a.xlsx", b"whatever", "cannot tell the format"),
    ],
)
def test_bad_files_name_file_and_row(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RnnclfError) as error:
        read_split(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(RnnclfError, match="file not found"):
        read_split(tmp_path / "none.csv")
    with pytest.raises(RnnclfError, match="is a directory"):
        read_split(tmp_path)


def test_stratified_split_keeps_class_shares_and_is_seeded():
    split = Split([str(i) for i in range(1000)], ["a"] * 800 + ["b"] * 190 + ["c"] * 10, "mem")
    train, valid = stratified_split(split, 0.1, seed=3)
    assert Counter(valid.labels) == {"a": 80, "b": 19, "c": 1}
    assert sorted(train.texts + valid.texts, key=int) == split.texts
    again = stratified_split(split, 0.1, seed=3)[1]
    other = stratified_split(split, 0.1, seed=4)[1]
    assert again.texts == valid.texts and other.texts != valid.texts


def test_corpus_checks_classes_and_unseen_labels(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": f"t{i}", "label": "x"}) + "\n" for i in range(5)))
    with pytest.raises(RnnclfError, match="only one class"):
        load_corpus(DataConfig(train=train), seed=0)
    train.write_text("".join(json.dumps({"text": f"t{i}", "label": "xy"[i % 2]}) + "\n" for i in range(10)))
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"text": "t", "label": "x"}) + "\n" + json.dumps({"text": "t", "label": "z"}) + "\n")
    with pytest.raises(RnnclfError, match=r"test.jsonl: line 2: label 'z' .* never seen in training"):
        load_corpus(DataConfig(train=train, test=test), seed=0)


def test_labels_in_natural_order(tmp_path):
    train = tmp_path / "t.csv"
    train.write_text("text,label\n" + "".join(f"t{i},{label}\n" for i, label in enumerate([10, 2, 1, 2, 10, 1])))
    assert load_corpus(DataConfig(train=train, valid=train), seed=0).labels == ["1", "2", "10"]


def test_unseen_label_names_the_line_where_its_row_starts_after_multi_line_fields_and_blank_lines(tmp_path):
    """Messages name the line of the file where the row starts (the header is line 1), as an editor counts."""
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(10)))
    test = tmp_path / "test.csv"
    test.write_text('text,label\n"a text\nover two lines",x\n\n"another\ntwo",y\n\n"new\nlabel",z\n')
    with pytest.raises(RnnclfError, match=r"test.csv: line 8: label 'z' .* never seen in training"):
        load_corpus(DataConfig(train=train, test=test), seed=0)


def test_a_corpus_keeps_labels_in_memory_and_reads_texts_from_the_file(tmp_path):
    """load_corpus holds no texts (a million documents cost memory for their labels only): the splits' texts
    are read again from the file, in order, and a carved validation split picks the same rows as in memory."""
    rows = [
        (f"text number {i}" + (' with "quotes", commas\nand a newline' if i % 7 == 0 else ""), "xyz"[i % 3])
        for i in range(300)
    ]
    train = tmp_path / "train.csv"
    write_csv(train, rows)
    corpus = load_corpus(DataConfig(train=train, valid_fraction=0.2), seed=5)
    assert isinstance(corpus.train.texts, FileTexts) and isinstance(corpus.valid.texts, FileTexts)
    in_memory = stratified_split(read_split(train), 0.2, seed=5)
    for carved, listed in zip((corpus.train, corpus.valid), in_memory, strict=True):
        assert len(carved.texts) == len(listed.texts) == len(carved.labels)
        assert list(carved.texts) == listed.texts and list(carved.texts) == listed.texts  # read twice, same texts
        assert carved.labels == listed.labels and list(carved.rows) == list(listed.rows)
    assert encode(fit_tokenizer(corpus.train.texts, 50), corpus.valid.texts).offsets.size == 61


def test_a_data_file_changed_between_reads_is_a_clear_error(tmp_path):
    """Texts are read again after the labels: another version of the file (even with as many rows) or none
    at all is one clear error, never texts that do not match their labels."""
    train = tmp_path / "train.jsonl"

    def write(prefix: str, count: int) -> None:
        train.write_text(
            "".join(json.dumps({"text": f"{prefix}{i}", "label": "xy"[i % 2]}) + "\n" for i in range(count))
        )

    changes = {
        "a row added": lambda: write("t", 11),
        "as many rows, other texts": lambda: write("other ", 10),
        "removed": train.unlink,
    }
    for change in changes.values():
        write("t", 10)
        corpus = load_corpus(DataConfig(train=train, valid_fraction=0.2), seed=0)
        assert len(list(corpus.valid.texts)) == 2
        change()
        for texts in (corpus.train.texts, corpus.valid.texts):
            with pytest.raises(
                RnnclfError, match=r"train.jsonl: the file changed \(or was removed\) while rnnclf read it"
            ):
                list(texts)


def test_data_valid_seed_carves_the_same_validation_split_whatever_the_train_seed(tmp_path):
    rows = [(f"text number {i}", "a" if i % 3 else "b") for i in range(200)]
    train = write_csv(tmp_path / "train.csv", rows)
    fixed = DataConfig(train=train, valid_seed=7)
    assert list(load_corpus(fixed, seed=0).valid.rows) == list(load_corpus(fixed, seed=1).valid.rows)
    assert list(load_corpus(fixed, seed=0).valid.rows) == list(load_corpus(DataConfig(train=train), seed=7).valid.rows)
    own = DataConfig(train=train)
    assert list(load_corpus(own, seed=0).valid.rows) != list(load_corpus(own, seed=1).valid.rows)
