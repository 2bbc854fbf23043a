"""Corpora from the Hugging Face hub, read with the optional `datasets` library."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from rnnclf.errors import RnnclfError

OFFLINE_CORPORA = ("r8", "r52", "20ng")
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class HubSpec:
    """Where a hub corpus lives and which of its columns and splits we read."""

    hub_id: str
    config: str | None
    splits: dict[str, str]  # our split name -> the hub's split name
    text_column: str
    label_column: str = "label"


HUB_CORPORA: dict[str, HubSpec] = {
    "ag_news": HubSpec("fancyzhx/ag_news", None, {"train": "train", "test": "test"}, "text"),
    "imdb": HubSpec("stanfordnlp/imdb", None, {"train": "train", "test": "test"}, "text"),
    "yelp_polarity": HubSpec("fancyzhx/yelp_polarity", None, {"train": "train", "test": "test"}, "text"),
    "dbpedia_14": HubSpec("fancyzhx/dbpedia_14", None, {"train": "train", "test": "test"}, "content"),
    # SST-2's hub test split has no labels (all -1), so its validation split is the test set.
    "sst2": HubSpec("stanfordnlp/sst2", None, {"train": "train", "test": "validation"}, "sentence"),
    # Multi-label: "topics" is a list of strings, empty for the documents without a topic.
    "reuters21578_hub": HubSpec(
        "ucirvine/reuters21578", "ModApte", {"train": "train", "test": "test"}, "text", label_column="topics"
    ),
}


Label = str | list[str] | None


def read(name: str) -> dict[str, Iterator[tuple[str, Label]]]:
    """Load hub corpus `name` and return its splits as (text, label) rows."""
    spec = HUB_CORPORA[name]
    return rows(_load_dataset(spec), spec)


def rows(dataset_dict: Any, spec: HubSpec) -> dict[str, Iterator[tuple[str, Label]]]:
    """Turn a loaded `datasets.DatasetDict` into (text, label) rows per split.

    Integer labels become the ClassLabel names when the dataset has them; a negative
    label (the hub's mark for "unlabelled") becomes None so the writer drops the row.
    A list label (a multi-label column) becomes a list of strings, None when empty.
    """
    out = {}
    for ours, theirs in spec.splits.items():
        if theirs not in dataset_dict:
            raise RnnclfError(f"hub dataset {spec.hub_id} has no split {theirs!r} (it has: {', '.join(dataset_dict)})")
        split = dataset_dict[theirs]
        for column in (spec.text_column, spec.label_column):
            if column not in split.column_names:
                raise RnnclfError(
                    f"hub dataset {spec.hub_id} split {theirs!r} has no column {column!r} "
                    f"(it has: {', '.join(split.column_names)})"
                )
        feature = split.features[spec.label_column]
        # A list column's ClassLabel sits in its `feature`.
        names = getattr(feature, "names", None) or getattr(getattr(feature, "feature", None), "names", None)
        out[ours] = _split_rows(split, spec, names)
    return out


def _split_rows(split: Any, spec: HubSpec, names: list[str] | None) -> Iterator[tuple[str, Label]]:
    for batch in split.select_columns([spec.text_column, spec.label_column]).iter(batch_size=1000):
        for text, label in zip(batch[spec.text_column], batch[spec.label_column], strict=True):
            if isinstance(label, list):
                labels = [name for name in (_label_name(one, names) for one in label) if name is not None]
                yield text or "", labels or None
            else:
                yield text or "", _label_name(label, names)


def _label_name(label: Any, names: list[str] | None) -> str | None:
    if label is None or (isinstance(label, int) and label < 0):
        return None
    if names is not None and isinstance(label, int):
        return names[label]
    return str(label)


def _load_dataset(spec: HubSpec) -> Any:
    """Download (or read from the Hugging Face cache) the DatasetDict for `spec`."""
    try:
        import datasets
    except ImportError:
        raise RnnclfError(
            f"corpus {spec.hub_id} needs the Hugging Face `datasets` library: pip install 'rnnclf[hub]'"
        ) from None
    offline = _offline_requested()
    # Without this check `datasets` retries for about half a minute before giving up.
    if not offline and not _hub_reachable():
        raise RnnclfError(_offline_message(spec, "the hub cannot be reached"))
    try:
        return datasets.load_dataset(spec.hub_id, spec.config)
    except Exception as e:  # datasets raises many kinds; the user needs one line either way
        if offline:
            raise RnnclfError(_offline_message(spec, "offline mode is on and it is not in the local cache")) from e
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise RnnclfError(f"could not load hub dataset {spec.hub_id}: {first_line}") from e


def _offline_requested() -> bool:
    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("HF_DATASETS_OFFLINE"))
    return any((flag or "").upper() in _TRUE for flag in flags)


def _hub_reachable(timeout: float = 3.0) -> bool:
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    # Behind a proxy the hub's own name may not resolve; the proxy is what must answer.
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy and url.scheme == "https":
        url = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_message(spec: HubSpec, why: str) -> str:
    return (
        f"cannot fetch hub dataset {spec.hub_id}: {why}; the built-in corpora {', '.join(OFFLINE_CORPORA)} work offline"
    )
