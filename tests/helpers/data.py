"""Generated data: a small task whose label depends on word order, a multi-label topic task, and texts with planted
problems for data check; written as CSV or JSONL."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

POSITIVE = ["good", "great", "fine", "superb", "nice"]
NEGATIVE = ["bad", "awful", "poor", "terrible", "dull"]
FILLER = ["the", "movie", "was", "plot", "acting", "really", "and", "a", "story", "film"]


def order_task(n: int, seed: int) -> list[tuple[str, str]]:
    """Each text holds one adjective and one 'not'. 'not' before the adjective flips it; after, it does not.

    Both orders have the same bag of words, so a model that ignores order is at chance.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        adjective = rng.choice(POSITIVE + NEGATIVE)
        negated = rng.random() < 0.5
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 8))]
        a, b = sorted(rng.randint(0, len(words)) for _ in range(2))
        first, second = ("not", adjective) if negated else (adjective, "not")
        words = words[:a] + [first] + words[a:b] + [second] + words[b:]
        positive = (adjective in POSITIVE) != negated
        rows.append((" ".join(words), "pos" if positive else "neg"))
    return rows


TOPICS = {
    "sport": ["match", "goal", "team", "coach"],
    "money": ["bank", "profit", "shares", "loan"],
    "weather": ["rain", "storm", "sunny", "wind"],
    "music": ["song", "band", "concert", "album"],
    "rare": ["comet"],
}


def multi_label_task(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """Texts about zero to three topics, each topic named by one of its words; the labels are the topics.

    `rare` is in about 2% of the texts; about 5% of the texts have no topic (an empty list of labels).
    """
    rng = random.Random(seed)
    common = [topic for topic in TOPICS if topic != "rare"]
    rows = []
    for _ in range(n):
        chosen = [] if rng.random() < 0.05 else rng.sample(common, rng.choice([1, 1, 2, 3]))
        if rng.random() < 0.02:
            chosen.append("rare")
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))] + [rng.choice(TOPICS[t]) for t in chosen]
        rng.shuffle(words)
        rows.append((" ".join(words), sorted(chosen)))
    return rows


WORDY_TOPICS = {
    "sport": "match goal team coach league score player",
    "money": "bank profit shares loan market price rate",
    "weather": "rain storm sunny wind cloud cold snow",
}


def topic_task(n: int, seed: int) -> list[tuple[str, str]]:
    """Texts of a few function words and two words of their topic: a bag of words tells the label (the wide head's
    and the linear model's task)."""
    rng = random.Random(seed)
    filler = "the a of and to in was it on with".split()
    rows = []
    for _ in range(n):
        topic = rng.choice(list(WORDY_TOPICS))
        chosen = [rng.choice(filler) for _ in range(rng.randint(3, 9))] + rng.sample(WORDY_TOPICS[topic].split(), 2)
        rng.shuffle(chosen)
        rows.append((" ".join(chosen), topic))
    return rows


def write_jsonl(path: Path, rows: list[tuple[str, object]], label_field: str = "labels") -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for text, labels in rows:
            handle.write(json.dumps({"text": text, label_field: labels}) + "\n")
    return path


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`: proof that nothing in it changed."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def words(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)) for _ in range(count)]


def sentences(rng: random.Random, count: int, size: int = 16) -> list[str]:
    """Texts of random 7-letter words: no two share a bigram by chance."""
    return [" ".join(words(rng, size)) for _ in range(count)]
