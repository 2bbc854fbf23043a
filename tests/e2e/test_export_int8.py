"""`rnnclf export RUN --quantize int8` end to end: the check of torch's int8 model against fp32 on the run's
validation texts, recorded in RUN/int8.json, single- and multi-label."""

import json

import numpy as np
import pytest
import torch.ao.nn.quantized.dynamic as dynamic
from torch import nn

from rnnclf.inference.evaluate import labelled_split
from rnnclf.inference.predictor import Predictor

from helpers.cli import rnnclf


def test_the_check_records_agreement_and_accuracy_on_the_validation_texts(int8_run, int8_checked):
    assert int8_checked.returncode == 0, int8_checked.stderr
    record = json.loads((int8_run / "int8.json").read_text())
    assert record["agreement"] >= 0.99 and record["texts"] == 150
    assert record["accuracy_fp32"] - record["accuracy_int8"] <= 0.003


def test_int8_is_checked_on_label_sets(multi_label_workspace):
    run = multi_label_workspace / "run"
    result = rnnclf("export", "run", "--quantize", "int8", cwd=multi_label_workspace)
    assert result.returncode == 0, result.stderr
    record = json.loads((run / "int8.json").read_text())
    assert record["agreement"] >= 0.99  # the share of validation texts given the same set of labels
    # the int8 predictor computes in torch's quantized GRU and Linear, and no float one is left
    int8, fp32 = Predictor.load(run, "cpu", int8=True), Predictor.load(run, "cpu")
    kinds = {type(module) for module in int8.model.modules()}
    assert {dynamic.GRU, dynamic.Linear} <= kinds and not kinds & {nn.GRU, nn.Linear}
    # the agreement recomputed from the two predictors on the check's texts: the same label sets, other scores
    valid, _ = labelled_split(fp32.run, None, "valid")
    texts = list(valid.texts)
    assert len(texts) == record["texts"]
    assert not np.array_equal(int8.predict_proba(texts), fp32.predict_proba(texts))
    same = [a.labels == b.labels for a, b in zip(int8.predict_labels(texts), fp32.predict_labels(texts), strict=True)]
    assert np.mean(same) >= 0.99 and np.mean(same) == pytest.approx(record["agreement"])
    report = json.loads(rnnclf("eval", "run", "--int8", "--format", "json", cwd=multi_label_workspace).stdout)
    assert report["multi_label"] and abs(report["micro_f1"] - report["fp32"]["micro_f1"]) < 0.02
