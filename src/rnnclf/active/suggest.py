"""rnnclf suggest: the texts of an unlabelled pool worth labelling next, written as a file ready to label.

One pass over the pool, a chunk at a time: texts the run has already (its training, validation and test texts,
exactly or nearly: check/known_texts.py) are skipped; the others are scored by the model (strategies.py) and the
most uncertain kept in a bounded shortlist. The pick: the top of the shortlist (margin, entropy), a batch of it
that is unsure but not redundant (diverse: with the text vectors of the shortlist and of the run's training
texts), or a seeded draw of the pool (random). Repeats inside the pool are picked once. A second pass reads the
chosen texts back; they are written in the run's training format with the label empty, and the model's guess,
its probability, the score and the pool line beside them.
"""

from __future__ import annotations

import csv
import io
import json
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnclf.active.pool import Pool
from rnnclf.active.strategies import Shortlist, diverse_choice, random_positions, uncertainty
from rnnclf.check.findings import normalise
from rnnclf.check.known_texts import KnownTexts
from rnnclf.data.corpus import load_corpus
from rnnclf.data.readers import detect_format
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.scores import probabilities
from rnnclf.files import write_atomic
from rnnclf.runs.directory import update_chain

SHORTLIST = 10  # diverse: picks among the k x SHORTLIST most uncertain texts (Zhdanov 2019 prefilters 10k)
ANCHORS = 2000  # diverse: at most this many of the run's training texts stand for what is labelled already
EXTRA = ("guess", "probability", "score", "line")  # the columns written beside the text and the empty label


@dataclass
class Scan:
    """What one pass over the pool found: every row's pool line, which rows may be suggested (not the run's, not a
    repeat of an earlier row), and how many were skipped."""

    lines: array = field(default_factory=lambda: array("q"))
    eligible: array = field(default_factory=lambda: array("b"))
    known: int = 0  # rows skipped: the run has them already
    repeats: int = 0  # rows skipped: the same text as an earlier row


def run_texts(run: Any, log: Callable[[str], None]) -> list[str]:
    """Every text the run and the runs it was updated from (model.init) have labelled: their training, validation
    and test splits."""
    texts = []
    for earlier in update_chain(run):
        try:
            corpus = load_corpus(earlier.config.data, earlier.config.train.seed, earlier.labels)
        except RnnclfError as exc:
            log(f"rnnclf: warning: {earlier.path}: its data is not readable ({exc}); texts it has are not skipped")
            continue
        texts += [
            text for split in (corpus.train, corpus.valid, corpus.test) if split is not None for text in split.texts
        ]
    return texts


def scan(
    pool: Pool, predictor: Any, strategy: str, size: int, known: KnownTexts, progress: Any
) -> tuple[Scan, Shortlist]:
    """The pass over the pool: skip what the run has and repeats, score the rest, keep the `size` most uncertain."""
    found, shortlist, keys = Scan(), Shortlist(size), set()
    diverse, row = strategy == "diverse", 0
    for lines, texts in pool.chunks():
        normal = [normalise(text) for text in texts]
        seen = known.seen(texts, normal)
        repeat = np.zeros(len(texts), dtype=bool)
        for i, text in enumerate(normal):
            if not seen[i]:
                key = hash(text)  # 8 bytes or so per distinct text kept, not the text
                repeat[i] = key in keys
                keys.add(key)
        found.known, found.repeats = found.known + int(seen.sum()), found.repeats + int(repeat.sum())
        found.lines.extend(lines)
        found.eligible.extend((~seen & ~repeat).astype(np.int8).tolist())
        positions = np.arange(row, row + len(texts))
        row += len(texts)
        progress.update(len(texts))
        keep = np.flatnonzero(~seen & ~repeat)
        if strategy == "random" or not keep.size:
            continue
        probs, vectors = score_texts(predictor, [texts[i] for i in keep], diverse)
        scores = uncertainty(probs, strategy, predictor.multi_label, getattr(predictor, "thresholds", None))
        shortlist.add(scores, positions[keep], vectors)
    return found, shortlist


def score_texts(predictor: Any, texts: list[str], vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The calibrated probabilities of texts, and (diverse) their text vectors."""
    if not vectors:
        return predictor.predict_proba(texts), None
    logits, pooled = predictor.logits_and_vectors(texts)
    return probabilities(logits, predictor.multi_label), pooled


def pick(found: Scan, shortlist: Shortlist, request: Request, anchors: Callable[[], np.ndarray]) -> np.ndarray:
    """The k chosen pool rows, most useful first (random: in pool order)."""
    eligible = np.frombuffer(found.eligible, dtype=np.int8).astype(bool)
    available, k = int(eligible.sum()), request.k
    if not len(eligible):
        raise RnnclfError(f"--pool {request.pool}: no texts in it")
    if k > available:
        raise RnnclfError(
            f"--k {k}: the pool has {available:,} texts to suggest (of {len(eligible):,}: {found.known:,} the run has "
            f"already, {found.repeats:,} repeats); ask for at most {available:,}"
        )
    if request.strategy == "random":
        return random_positions(len(eligible), k, request.seed, exclude=~eligible)
    if request.strategy != "diverse":
        return shortlist.positions[:k]
    alpha = available / (available + request.labelled)  # modAL's weight of diversity: unlabelled / all
    return shortlist.positions[diverse_choice(shortlist.scores, shortlist.vectors, k, anchors(), alpha)]


@dataclass
class Request:
    """What the user asked: the run, the pool, how many, how to choose, where to write."""

    run: Path
    pool: Path
    k: int
    strategy: str
    out: Path
    seed: int = 0
    labelled: int = 0  # how many labelled texts the run has (set once they are read)


def output_kind(run: Any) -> str:
    """The run's training data format (csv, tsv or jsonl): the suggestions are written in it."""
    data = run.config.data
    if data.dataset is not None:
        return "jsonl"
    return detect_format(Path(data.train), data.format)


def rows_of(pool: Pool, chosen: np.ndarray) -> dict[int, str]:
    """The texts of the chosen pool rows (a second pass: the first kept none)."""
    wanted, texts, row = set(chosen.tolist()), {}, 0
    for _, text in pool.rows():
        if row in wanted:
            texts[row] = text
        row += 1
    return texts


def write_suggestions(path: Path, kind: str, run: Any, rows: list[dict[str, Any]]) -> None:
    """The suggestions in the training format, the label empty (JSONL: null, so an unfilled row is an error)."""
    data = run.config.data
    if kind == "jsonl":
        text = "".join(
            json.dumps({data.text_field: r["text"], data.label_field: None} | r["extra"]) + "\n" for r in rows
        )
        write_atomic(path, text.encode("utf-8"))
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t" if kind == "tsv" else ",", lineterminator="\n")
    writer.writerow([data.text_field, data.label_field, *EXTRA])
    for r in rows:
        extra = r["extra"]
        guess = extra["guess"] if isinstance(extra["guess"], str) else data.label_separator.join(extra["guess"])
        writer.writerow([r["text"], "", guess, extra["probability"], extra["score"], extra["line"]])
    write_atomic(path, buffer.getvalue().encode("utf-8"))


def describe(predictor: Any, probs: np.ndarray, strategy: str) -> list[dict[str, Any]]:
    """Each chosen text's guess, its probability and its uncertainty score (margin's for random)."""
    thresholds = getattr(predictor, "thresholds", None)
    shown = "margin" if strategy in ("random", "diverse") else strategy
    scored = uncertainty(probs, shown, predictor.multi_label, thresholds)
    out = []
    for row, score in zip(probs, scored, strict=True):
        if predictor.multi_label:
            guess = [predictor.labels[j] for j in np.flatnonzero(row >= predictor.thresholds)]
            probability = float(max(row.max(), 0.0))
        else:
            guess, probability = predictor.labels[int(row.argmax())], float(row.max())
        out.append({"guess": guess, "probability": round(probability, 4), "score": round(float(score), 4)})
    return out


def suggest(request: Request, predictor: Any, pool: Pool, log: Callable[[str], None], progress: Any) -> dict:
    """The whole command once its inputs are checked: scan, pick, read back, write. Returns the summary."""
    started = time.perf_counter()
    labelled = run_texts(predictor.run, log)
    request.labelled = len(labelled)
    known = KnownTexts(labelled)
    size = request.k * SHORTLIST if request.strategy == "diverse" else request.k
    found, shortlist = scan(pool, predictor, request.strategy, size, known, progress)
    progress.close()

    def anchors() -> np.ndarray:
        drawn = np.random.default_rng(request.seed).permutation(len(labelled))[:ANCHORS]
        return predictor.logits_and_vectors([labelled[i] for i in np.sort(drawn)])[1]

    chosen = pick(found, shortlist, request, anchors)
    texts = rows_of(pool, chosen)
    ordered = [texts[int(row)] for row in chosen]
    details = describe(predictor, predictor.predict_proba(ordered), request.strategy)
    rows = [
        {"text": text, "extra": detail | {"line": int(found.lines[int(row)])}}
        for text, detail, row in zip(ordered, details, chosen, strict=True)
    ]
    write_suggestions(request.out, output_kind(predictor.run), predictor.run, rows)
    return {
        "out": str(request.out),
        "strategy": request.strategy,
        "suggested": len(rows),
        "pool_texts": len(found.lines),
        "skipped_known": found.known,
        "skipped_repeats": found.repeats,
        "seconds": round(time.perf_counter() - started, 1),
    }
