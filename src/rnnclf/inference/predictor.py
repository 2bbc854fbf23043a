"""Predictor: load a run directory, predict labels for texts. Loads no training code."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rnnclf.data.tokenizer import EncodedTexts, encode
from rnnclf.device.precision import choose_device, choose_precision
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import calibrate
from rnnclf.evaluation.scores import probabilities
from rnnclf.inference.decisions import Decisions, check_texts
from rnnclf.inference.int8 import quantize_int8, require_int8
from rnnclf.inference.logits import predict_logits
from rnnclf.models.classifier import RNNClassifier, classifier_arguments
from rnnclf.runs.directory import Run, load_run


class Predictor(Decisions):
    """A trained classifier, ready for texts. Needs nothing but the run directory.

    `workers` threads each predict whole batches on the CPU: with one torch thread per process
    (rnnclf.device.threads.use_cpu_threads(1)) and one worker per core, the fastest use of the cores.
    """

    def __init__(
        self, run: Run, device: str = "auto", batch_size: int = 64, workers: int = 1, int8: bool = False
    ) -> None:
        self.run = run
        self.labels = run.labels
        self.multi_label, self.thresholds = run.config.data.multi_label, run.thresholds
        self.temperature = run.temperature
        self.tokenizer = run.tokenizer
        if int8 and device == "cuda":
            raise RnnclfError("--int8 runs on the CPU; use --device cpu (a GPU predicts fast in bf16 already)")
        self.device = choose_device("cpu" if int8 else device)
        self.dtype = choose_precision(self.device, run.config.train.amp, probe=False).autocast
        self.batch_size = batch_size
        self.workers = workers
        wide_features = run.wide.size if run.wide is not None else 0
        arguments = classifier_arguments(run.config, wide_features)
        self.model = RNNClassifier(run.tokenizer.get_vocab_size(), len(run.labels), **arguments)
        try:
            self.model.load_state_dict(run.weights)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise RnnclfError(f"{run.path}: the weights do not fit the run's config ({first})") from None
        self.int8 = int8
        if int8:  # checked on the run's validation texts when it was allowed (rnnclf export --quantize int8)
            require_int8(run.path)
            self.model = quantize_int8(self.model)
        self.model.to(self.device).eval()

    @classmethod
    def load(cls, path: Path | str, device: str = "auto", workers: int = 1, int8: bool = False) -> Predictor:
        return cls(load_run(path), device, workers=workers, int8=int8)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        check_texts(texts)
        return self.encoded_logits(self.encode(texts))

    def encode(self, texts: Iterable[str]) -> EncodedTexts:
        """Texts as this run's model reads them: token ids (the tokenizer truncates to the run's max_length, so a
        huge text costs no more than a long one) and, for a wide head, their n-gram rows."""
        return encode_texts(self.run, texts)

    def encoded_logits(self, encoded: EncodedTexts) -> np.ndarray:
        """Logits of texts already turned into token ids by this run's tokenizer, divided by the run's temperature:
        what its probabilities come from."""
        return calibrate(self.model_logits(encoded), self.temperature)

    def model_logits(self, encoded: EncodedTexts) -> np.ndarray:
        """The model's own logits, before the temperature."""
        return predict_logits(self.model, encoded, self.device, self.batch_size, self.dtype, self.workers)

    def logits_and_vectors(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The logits (divided by the temperature) of texts, and the text vectors the output layer reads."""
        encoded = self.encode(texts)
        vectors = np.zeros((len(encoded), self.model.head.in_features), dtype=np.float32)
        logits = predict_logits(self.model, encoded, self.device, self.batch_size, self.dtype, self.workers, vectors)
        return calibrate(logits, self.temperature), vectors

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return probabilities(self.logits(texts), self.multi_label)


def encode_texts(run: Run, texts: Iterable[str]) -> EncodedTexts:
    """A run's token ids of texts, with the wide head's n-gram rows when it has one."""
    encoded = encode(run.tokenizer, texts)
    if run.wide is not None:
        encoded.wide = run.wide.transform(texts)
    return encoded
