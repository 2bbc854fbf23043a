"""int8 prediction: torch's dynamic quantization, allowed only after a check on the run's validation texts."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.ao.nn.quantized.dynamic as dynamic
from torch import nn

from rnnclf.errors import RnnclfError
from rnnclf.inference.evaluate import labelled_split
from rnnclf.inference.int8 import judge
from rnnclf.inference.predictor import Predictor


def test_a_failing_check_writes_nothing(int8_run, tmp_path, monkeypatch):
    from rnnclf.inference import int8_check

    copy = tmp_path / "broken"
    shutil.copytree(int8_run, copy, ignore=shutil.ignore_patterns("int8.json"))

    def scrambled(model):  # an "int8" model that answers at random: the check must refuse it
        with torch.no_grad():
            model.head.weight.copy_(torch.randn_like(model.head.weight) * 10)
        return model

    monkeypatch.setattr(int8_check, "quantize_int8", scrambled)
    with pytest.raises(RnnclfError, match="int8 is not exact enough for this run: labels agree"):
        int8_check.check_int8(copy, log=lambda line: None)
    assert not (copy / "int8.json").exists()


def test_judge_thresholds():
    assert judge(0.995, 0.9, 0.898) is None
    assert "labels agree with fp32 on 98.00%" in judge(0.98, 0.9, 0.9)
    assert "drops 0.50 points" in judge(0.995, 0.9, 0.895)
    assert judge(0.999, 0.9, 0.897) is None  # exactly 0.3 points, in floating point


def layer_kinds(model: nn.Module) -> set[type]:
    return {type(module) for module in model.modules()}


def test_the_int8_predictor_computes_in_int8_layers(int8_run, int8_checked):
    """--int8 loads torch's dynamically quantized LSTM and Linear, and no float recurrent or linear layer is left."""
    assert int8_checked.returncode == 0, int8_checked.stderr
    int8 = Predictor.load(int8_run, "cpu", int8=True)
    fp32 = Predictor.load(int8_run, "cpu")
    assert {dynamic.LSTM, dynamic.Linear} <= layer_kinds(int8.model)  # the encoder and the head
    assert not layer_kinds(int8.model) & {nn.LSTM, nn.GRU, nn.RNN, nn.Linear}
    assert {nn.LSTM, nn.Linear} <= layer_kinds(fp32.model) and not layer_kinds(fp32.model) & {dynamic.LSTM}
    assert json.loads((int8_run / "int8.json").read_text())["quantized"] == ["LSTM", "Linear"]


def test_int8_probabilities_move_while_labels_agree_as_the_check_recorded(int8_run, int8_checked):
    """On the validation texts the check used: int8's probabilities differ from fp32's (int8 arithmetic ran), the
    labels agree, and the agreement and accuracies recorded in int8.json are the ones the two predictors give."""
    assert int8_checked.returncode == 0, int8_checked.stderr
    record = json.loads((int8_run / "int8.json").read_text())
    int8 = Predictor.load(int8_run, "cpu", int8=True)
    fp32 = Predictor.load(int8_run, "cpu")
    valid, _ = labelled_split(fp32.run, None, "valid")
    texts = list(valid.texts)
    targets = np.array([fp32.labels.index(label) for label in valid.labels])
    assert len(texts) == record["texts"] == 150
    quantized, reference = int8.predict_proba(texts), fp32.predict_proba(texts)
    assert not np.array_equal(quantized, reference)
    assert np.abs(quantized - reference).max() < 0.05
    agreement = float(np.mean(quantized.argmax(axis=1) == reference.argmax(axis=1)))
    assert agreement >= 0.99 and agreement == pytest.approx(record["agreement"])
    accuracy_int8 = float(np.mean(quantized.argmax(axis=1) == targets))
    accuracy_fp32 = float(np.mean(reference.argmax(axis=1) == targets))
    assert (accuracy_fp32, accuracy_int8) == pytest.approx((record["accuracy_fp32"], record["accuracy_int8"]))
    assert accuracy_fp32 - accuracy_int8 <= 0.003
