"""The predictor applies what the run directory holds: multi-label thresholds, the temperature."""

import json

import numpy as np
import torch

from rnnclf.evaluation.scores import probabilities
from rnnclf.inference.predictor import Predictor

from helpers.data import multi_label_task, order_task
from helpers.runs import MULTI_LABEL_LABELS


def test_the_predictor_applies_the_run_thresholds(multi_label_workspace):
    predictor = Predictor.load(multi_label_workspace / "run", "cpu")
    texts = [text for text, _ in multi_label_task(200, seed=9)]
    probabilities = predictor.predict_proba(texts)
    decided = predictor.predict_labels(texts)
    thresholds = json.loads((multi_label_workspace / "run" / "thresholds.json").read_text())["thresholds"]
    for row, found in zip(probabilities, decided, strict=True):
        assert found.labels == [
            label for label, p in zip(MULTI_LABEL_LABELS, row, strict=True) if p >= thresholds[label]
        ]
    assert np.all((probabilities >= 0) & (probabilities <= 1)) and not np.allclose(probabilities.sum(axis=1), 1)


def test_predict_applies_the_temperature_and_keeps_every_label(calibration_workspace):
    predictor = Predictor.load(calibration_workspace / "run", "cpu")
    texts = [text for text, _ in order_task(50, 7)]
    from rnnclf.data.tokenizer import encode

    model_logits = predictor.model_logits(encode(predictor.tokenizer, texts))
    expected = torch.softmax(torch.from_numpy(model_logits) / float(predictor.temperature[0]), dim=1).numpy()
    assert np.allclose(predictor.predict_proba(texts), expected, atol=1e-6)
    assert not np.allclose(predictor.predict_proba(texts), probabilities(model_logits, False), atol=1e-3)
    assert [p[0][0] for p in predictor.predict(texts)] == [predictor.labels[i] for i in model_logits.argmax(axis=1)]
