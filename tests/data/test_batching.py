import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnclf.data.batching import bucket_by_length, collate, sequential_batches
from rnnclf.data.tokenizer import PAD_ID, EncodedTexts


def make_encoded(lengths: list[int]) -> EncodedTexts:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = (np.arange(offsets[-1]) % 50 + 2).astype(np.int32)
    return EncodedTexts(ids, offsets)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=400), st.integers(1, 64), st.integers(0, 5))
def test_every_text_once_per_epoch(lengths, batch_size, epoch):
    batches = bucket_by_length(np.array(lengths), batch_size, seed=7, epoch=epoch)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)


def test_buckets_pad_little_and_epochs_differ_but_are_seeded():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 400, size=5000)
    bucketed = bucket_by_length(lengths, 32, seed=1, epoch=1)
    naive = [np.arange(i, min(i + 32, 5000)) for i in range(0, 5000, 32)]

    def padding(batches):
        return sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches)

    assert padding(bucketed) < 0.1 * padding(naive)
    assert [b.tolist() for b in bucket_by_length(lengths, 32, seed=1, epoch=1)] == [b.tolist() for b in bucketed]
    assert [b.tolist() for b in bucket_by_length(lengths, 32, seed=1, epoch=2)] != [b.tolist() for b in bucketed]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.data())
def test_collate_pads_exactly_each_text(lengths, data):
    encoded = make_encoded(lengths)
    index = np.array(data.draw(st.permutations(range(len(lengths)))))
    labels = np.arange(len(lengths))
    batch = collate(encoded, index, labels)
    assert batch.ids.shape == (len(index), max(lengths))
    for row, i in enumerate(index):
        n = lengths[i]
        assert batch.lengths[row] == n
        assert batch.ids[row, :n].tolist() == encoded.get(i).tolist()
        assert (batch.ids[row, n:] == PAD_ID).all()
        assert batch.labels[row] == i


def test_sequential_batches_cover_all_sorted_by_length():
    lengths = np.array([5, 1, 3, 2, 4])
    batches = sequential_batches(lengths, 2)
    assert np.concatenate(batches).tolist() == [1, 3, 2, 4, 0]
