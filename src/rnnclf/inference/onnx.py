"""ONNX export of a run, checked against PyTorch before it is written; and OnnxPredictor, which runs it.

RUN/model.onnx takes `ids` int64 (batch, time), each row a text's token ids padded with PAD_ID after its
end, and `lengths` int64 (batch,), and gives `probabilities` float32 (batch, classes) in the order of
labels.json. RUN/model.onnx.json tells a program without rnnclf which files, names and ids to use.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnclf import __version__
from rnnclf.config.schema import ModelConfig
from rnnclf.data.batching import collate, sequential_batches
from rnnclf.data.ngrams import WIDE_FEATURES
from rnnclf.data.readers import read_split
from rnnclf.data.tokenizer import PAD_ID, UNK_ID, EncodedTexts, vocabulary
from rnnclf.device.cores import available_cores
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import describe_temperature
from rnnclf.evaluation.thresholds import read_thresholds
from rnnclf.files import TOKENIZER, WEIGHTS, write_atomic, write_json
from rnnclf.inference.decisions import Decisions, check_texts
from rnnclf.inference.predictor import Predictor, encode_texts
from rnnclf.runs.directory import Run, load_run, weights_digest

ONNX_FILE = "model.onnx"
OPSET = 17  # old enough for most runtimes; has everything the model needs
TOLERANCE = 1e-4  # largest difference allowed between ONNX Runtime's and PyTorch's probabilities
CHECK_TEXTS = 500
IDS, LENGTHS, OUTPUT = "ids", "lengths", "probabilities"
WIDE_INPUTS = ("ngram_indices", "ngram_offsets", "ngram_values")  # a model with a wide head (model.wide)
INPUT_ABOUT = {
    IDS: {
        "type": "int64",
        "shape": ["batch", "time"],
        "about": "token ids of each text (tokenizer, no special tokens), padded with pad_id after its end",
    },
    LENGTHS: {"type": "int64", "shape": ["batch"], "about": "each text's number of tokens (at least 1)"},
    WIDE_INPUTS[0]: {
        "type": "int64",
        "shape": ["ngrams"],
        "about": "the texts' n-gram feature indices, text after text",
    },
    WIDE_INPUTS[1]: {"type": "int64", "shape": ["batch"], "about": "where each text's n-grams start in ngram_indices"},
    WIDE_INPUTS[2]: {
        "type": "float32",
        "shape": ["ngrams"],
        "about": "each n-gram's TF-IDF value (unit length per text)",
    },
}
NGRAMS_ABOUT = (
    "rnnclf.data.ngrams.NgramFeatures.transform computes the three ngram_* inputs from texts: NFKC, lowercase, words "
    "split at every run of non-word characters, a 64-bit hash per word (rnnclf.data.words), n-gram keys, the feature "
    "index of each key kept in ngram_features (its keys and idf)"
)


class Probabilities(nn.Module):
    """The classifier with its temperature and softmax (multi-label: a sigmoid per label): what a program that only
    runs the ONNX file wants."""

    def __init__(self, model: nn.Module, multi_label: bool = False, temperature: np.ndarray | None = None) -> None:
        super().__init__()
        self.model, self.multi_label = model, multi_label
        self.register_buffer("temperature", torch.ones(1) if temperature is None else torch.from_numpy(temperature))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """inputs: ids and lengths, then the wide head's three inputs; only the latter for the linear model."""
        logits = (self.model(*inputs) if self.model.deep else self.model(None, None, *inputs)) / self.temperature
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise RnnclfError("ONNX needs onnxruntime, which is not installed: pip install 'rnnclf[onnx]'") from None
    return onnxruntime


def export_onnx(path: Path | str, out: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export a run to ONNX and check it against PyTorch on real texts; write it (and its JSON sidecar) only
    if every probability agrees within TOLERANCE. Returns the sidecar."""
    onnxruntime = import_onnxruntime()
    predictor = Predictor.load(path, "cpu")
    run = predictor.run
    out = Path(out) if out is not None else run.path / ONNX_FILE
    if out.is_dir():
        raise RnnclfError(f"{out}: is a directory; give --out a file name such as {out / ONNX_FILE}")
    what = describe(run.config.model)
    model = to_onnx(
        Probabilities(predictor.model, predictor.multi_label, predictor.temperature), what, input_names(run)
    )
    texts, source = texts_to_check(run)
    log(f"checking the ONNX model against PyTorch on {len(texts)} {source}")
    try:
        difference = max_difference(session(onnxruntime, model), predictor, texts)
    except RnnclfError:
        raise
    except Exception as exc:  # ONNX Runtime's errors share no base class but Exception
        raise RnnclfError(
            f"{run.path}: ONNX Runtime cannot run the export of this {what} ({first_line(exc)}); {out} not written"
        ) from None
    if not difference <= TOLERANCE:  # also catches NaN
        raise RnnclfError(
            f"{run.path}: the ONNX export of this {what} gives probabilities up to {difference:.2g} away from "
            f"PyTorch's (allowed {TOLERANCE:g}); {out} not written"
        )
    write_atomic(out, model)
    tokenizer = tokenizer_path(run.path, out)
    if tokenizer != TOKENIZER:
        write_atomic(out.parent / tokenizer, (run.path / TOKENIZER).read_bytes())
    if run.config.model.wide and out.parent.resolve() != run.path.resolve():
        write_atomic(out.parent / WIDE_FEATURES, (run.path / WIDE_FEATURES).read_bytes())
    sidecar = describe_export(run, out, source, len(texts), difference)
    write_json(sidecar_path(out), sidecar)
    return sidecar


def input_names(run: Run) -> list[str]:
    deep = [IDS, LENGTHS] if run.config.model.encoder != "none" else []
    return deep + (list(WIDE_INPUTS) if run.config.model.wide else [])


def describe(model: ModelConfig) -> str:
    if model.encoder == "none":
        return "linear n-gram model"
    if model.encoder == "bag":
        return f"bag of embeddings with {model.pooling} pooling"
    direction = "bidirectional" if model.bidirectional else "unidirectional"
    return f"{direction} {model.num_layers}-layer {model.encoder} with {model.pooling} pooling"


def to_onnx(model: Probabilities, what: str, names: list[str]) -> bytes:
    """The model as ONNX bytes, with dynamic batch, time and n-gram axes."""
    lengths = torch.tensor([7, 4, 2])  # the check below uses other batch sizes and widths
    ids = torch.where(torch.arange(7)[None, :] < lengths[:, None], UNK_ID, PAD_ID)
    ngrams = (torch.tensor([0, 1, 0]), torch.tensor([0, 2, 2]), torch.tensor([0.6, 0.8, 1.0]))  # the middle one empty
    example = {IDS: ids, LENGTHS: lengths, **dict(zip(WIDE_INPUTS, ngrams, strict=True))}
    axes = {IDS: {0: "batch", 1: "time"}, LENGTHS: {0: "batch"}, OUTPUT: {0: "batch"}}
    axes |= {WIDE_INPUTS[0]: {0: "ngrams"}, WIDE_INPUTS[1]: {0: "batch"}, WIDE_INPUTS[2]: {0: "ngrams"}}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice and its h0 batch-size hint
            # TorchScript exporter: torch 2.13's dynamo exporter fixes a bidirectional model's time axis
            # to the example's width (ONNX Runtime then refuses other widths), and takes seconds per model
            torch.onnx.export(
                model.eval(),
                tuple(example[name] for name in names),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=names,
                output_names=[OUTPUT],
                dynamic_axes={name: axes[name] for name in [*names, OUTPUT]},
            )
    except Exception as exc:
        raise RnnclfError(f"cannot export a {what} to ONNX: {type(exc).__name__}: {first_line(exc)}") from None
    return buffer.getvalue()


def first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def session(onnxruntime, model: bytes | str):
    """An ONNX Runtime session on one core: callers run whole batches in parallel threads instead."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the EmbeddingBag loop draws warnings that concern no user
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def texts_to_check(run: Run) -> tuple[list[str], str]:
    """Up to CHECK_TEXTS texts of the run's own data (valid, else test, else train file), the longest among
    them; generated texts when the data cannot be read (files moved or deleted, a corpus not cached)."""
    data = run.config.data
    if data.dataset is not None:
        from rnnclf.data.builtin import fetch, is_cached

        files = fetch(data.dataset) if is_cached(data.dataset) else {}  # no download just for a check
        candidates = [files.get(split) for split in ("valid", "test", "train")]
        fmt, text_field, label_field = "jsonl", "text", "label"
    else:
        candidates = [data.valid, data.test, data.train]
        fmt, text_field, label_field = data.format, data.text_field, data.label_field
    for file in candidates:
        if file is None or not Path(file).is_file():
            continue
        try:
            texts = read_split(Path(file), text_field, label_field, fmt, need_labels=False).texts
        except RnnclfError:
            continue
        if len(texts) > CHECK_TEXTS:
            longest = max(range(len(texts)), key=lambda i: len(texts[i]))
            rest = np.random.default_rng(0).choice(len(texts), CHECK_TEXTS - 1, replace=False)
            texts = [texts[i] for i in sorted({longest, *rest.tolist()})]
        return texts, f"texts from {file}"
    return generated_texts(run), "generated texts (the run's data files are not readable)"


def generated_texts(run: Run) -> list[str]:
    """Texts of the run's own vocabulary, from 1 word to max_length words."""
    words = [word for word in vocabulary(run.tokenizer)[2:] if word.strip()] or ["text"]
    rng = np.random.default_rng(0)
    sizes = [1, 2, 3, 5, 8, 13, 21, 34, 55, *rng.integers(1, 60, size=30).tolist(), run.config.data.max_length or 1000]
    return [" ".join(rng.choice(words, size=size)) for size in sizes]


def check_batches(lengths: np.ndarray) -> list[np.ndarray]:
    """Batches unlike the export example (3 texts, 7 steps): the longest text alone, the shortest alone,
    then all texts shuffled, so of mixed lengths (much padding), in batches of 2, 5, 11, 23, ..."""
    order = np.random.default_rng(0).permutation(len(lengths))
    batches = [np.array([lengths.argmax()]), np.array([lengths.argmin()])]
    start, size = 0, 2
    while start < len(order):
        batches.append(order[start : start + size])
        start, size = start + size, 2 * size + 1
    return batches


def max_difference(onnx_session, predictor: Predictor, texts: Sequence[str]) -> float:
    """Largest absolute difference between ONNX Runtime's and PyTorch's (Predictor's) probabilities."""
    expected = predictor.predict_proba(texts)
    encoded = predictor.encode(texts)
    worst = 0.0
    for index in check_batches(encoded.lengths):
        got = run_batch(onnx_session, encoded, index)
        worst = max(worst, float(np.abs(got - expected[index]).max()))
    return worst


def run_batch(onnx_session, encoded: EncodedTexts, index: np.ndarray) -> np.ndarray:
    """ONNX Runtime's probabilities of the texts at `index`, fed whichever inputs the model takes."""
    batch = collate(encoded, index)
    given = {IDS: batch.ids, LENGTHS: batch.lengths, **dict(zip(WIDE_INPUTS, batch.wide or (), strict=False))}
    names = [node.name for node in onnx_session.get_inputs()]
    return onnx_session.run([OUTPUT], {name: given[name].numpy() for name in names})[0]


def sidecar_path(model: Path) -> Path:
    return model.with_name(model.name + ".json")


def tokenizer_path(run_path: Path, model: Path) -> str:
    """The tokenizer's file name beside the model: the run's own in the run directory, else a copy written
    next to the model (<model name>.tokenizer.json), so the exported files stand alone."""
    if model.parent.resolve() == run_path.resolve():
        return TOKENIZER
    return f"{model.stem}.tokenizer.json"


def describe_export(run: Run, out: Path, source: str, count: int, difference: float) -> dict[str, Any]:
    """What a program without rnnclf needs to use the ONNX file."""
    return {
        "model": out.name,
        "opset": OPSET,
        "inputs": {name: INPUT_ABOUT[name] for name in input_names(run)},
        "outputs": {OUTPUT: {"type": "float32", "shape": ["batch", "classes"], "about": _output_about(run)}},
        "labels": run.labels,
        "multi_label": run.config.data.multi_label,
        **({"thresholds": _thresholds(run)} if run.config.data.multi_label else {}),
        "temperature": describe_temperature(run.temperature, run.labels, run.config.data.multi_label),
        "tokenizer": tokenizer_path(run.path, out),
        "tokenizer_about": "Hugging Face tokenizers JSON with normalization and truncation to max_length built in; "
        "a text with no tokens is one unk_id",
        "max_length": run.config.data.max_length,
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
        **({"ngram_features": WIDE_FEATURES, "ngrams_about": NGRAMS_ABOUT} if run.config.model.wide else {}),
        "check": {"texts": source, "count": count, "max_difference": difference, "tolerance": TOLERANCE},
        "weights_sha256": weights_digest(run.path),
        "exported_by": f"rnnclf {__version__}, torch {torch.__version__}",
    }


def _output_about(run: Run) -> str:
    calibrated = ", of the logits divided by the temperature" if run.temperature is not None else ""
    if run.config.data.multi_label:
        return f"a sigmoid per label, in their order{calibrated}: a label applies when its probability >= its threshold"
    return f"softmax over labels, in their order{calibrated}"


def _thresholds(run: Run) -> dict[str, float]:
    """The decision threshold of each label (thresholds.json; 0.5 for a run that has none yet)."""
    return {label: float(value) for label, value in zip(run.labels, run.thresholds, strict=True)}


class OnnxPredictor(Decisions):
    """A run's model.onnx in ONNX Runtime (CPU): the interface, batching and errors of Predictor; a multi-label
    model's thresholds are those in model.onnx.json, exported with it."""

    def __init__(self, run: Run, batch_size: int = 64) -> None:
        onnxruntime = import_onnxruntime()
        path = run.path / ONNX_FILE
        if not path.is_file():
            raise RnnclfError(f"{path}: missing; run `rnnclf export {run.path} --format onnx` first")
        stale(run, path)
        try:
            self.session = session(onnxruntime, str(path))
        except Exception as exc:
            raise RnnclfError(f"{path}: not a readable ONNX model ({first_line(exc)}); export the run again") from None
        self.run = run
        self.labels = run.labels
        self.multi_label = run.config.data.multi_label
        if self.multi_label:
            self.thresholds = exported_thresholds(path, run.labels)
        self.tokenizer = run.tokenizer
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: Path | str) -> OnnxPredictor:
        return cls(load_run(path, weights=False))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        check_texts(texts)
        encoded = encode_texts(self.run, texts)
        out = np.zeros((len(encoded), len(self.labels)), dtype=np.float32)

        def run(index: np.ndarray) -> None:
            out[index] = run_batch(self.session, encoded, index)

        # as the torch backend does: each thread takes whole batches on one core, which beats all cores on one
        # batch (1.3x over 2 intra-op threads on 2 idle cores) and suffers less when other work shares the cores
        batches = sequential_batches(encoded.lengths, self.batch_size)
        with ThreadPoolExecutor(max(1, min(available_cores(), len(batches)))) as pool:
            list(pool.map(run, batches))
        return out


def exported_thresholds(path: Path, labels: list[str]) -> np.ndarray:
    sidecar = sidecar_path(path)
    try:
        payload = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RnnclfError(f"{sidecar}: missing or unreadable; export the run again") from None
    return read_thresholds(payload if isinstance(payload, dict) else {}, labels, str(sidecar))


def stale(run: Run, path: Path) -> None:
    """A model.onnx exported before the run's weights last changed would answer for the old weights."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file() or not (run.path / WEIGHTS).is_file():
        return
    try:
        exported = json.loads(sidecar.read_text(encoding="utf-8")).get("weights_sha256")
    except (ValueError, AttributeError):  # a damaged sidecar says nothing about the weights
        return
    if exported is not None and exported != weights_digest(run.path):
        raise RnnclfError(
            f"{path}: exported from other weights than {run.path / WEIGHTS} (trained again since?); "
            f"run `rnnclf export {run.path} --format onnx` again"
        )
