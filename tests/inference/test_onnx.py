"""ONNX: every model kind gives PyTorch's probabilities in ONNX Runtime; an export that fails its check writes
nothing; the texts it is checked on."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from rnnclf.data.batching import collate
from rnnclf.errors import RnnclfError
from rnnclf.runs.directory import load_run

from helpers.models import COMBINATIONS, build, texts_to_encoded

onnxruntime = pytest.importorskip("onnxruntime")
export = pytest.importorskip("rnnclf.inference.onnx")


@pytest.mark.parametrize(("encoder", "bidirectional", "pooling", "layers"), COMBINATIONS)
def test_onnx_gives_pytorchs_probabilities(encoder, bidirectional, pooling, layers):
    model = build(encoder, bidirectional, pooling, layers)
    session = export.session(
        onnxruntime, export.to_onnx(export.Probabilities(model), "test model", [export.IDS, export.LENGTHS])
    )
    rng = np.random.default_rng(0)
    texts = [rng.integers(2, 30, size=n).tolist() for n in (1, 50, 4, 9, 2, 9, 1, 6, 3)]
    encoded = texts_to_encoded(texts)
    # sizes and widths unlike the export example (3 texts, 7 steps), padding in all but the first two
    for index in ([0], [1], [2, 3, 4, 5, 6, 7, 8], [4, 0], [3, 1]):
        batch = collate(encoded, np.array(index))
        with torch.no_grad():
            expected = torch.softmax(model(batch.ids, batch.lengths), dim=1).numpy()
        got = session.run(None, {"ids": batch.ids.numpy(), "lengths": batch.lengths.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_a_failed_check_writes_nothing(export_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # no export can pass
    with pytest.raises(RnnclfError, match="not written"):
        export.export_onnx(export_run, tmp_path / "model.onnx", log=lambda message: None)
    assert list(tmp_path.iterdir()) == []


def test_generated_texts_when_the_data_is_gone(export_run, tmp_path):
    run = load_run(export_run)
    moved = run.config.data.model_copy(update={"train": tmp_path / "moved.csv", "test": None})
    texts, source = export.texts_to_check(replace(run, config=run.config.model_copy(update={"data": moved})))
    assert source.startswith("generated texts")
    assert max(len(text.split()) for text in texts) == 400  # one text of max_length words
