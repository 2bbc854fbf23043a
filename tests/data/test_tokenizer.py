import numpy as np
import pytest

from rnnclf.data.tokenizer import PAD_ID, UNK_ID, EncodedTexts, encode, fit_tokenizer, load_tokenizer, vocabulary

TEXTS = ["The movie wasn't good, really!", "A great film.", "the plot was dull; the acting fine"] * 3


def test_word_tokenizer_lowercases_and_splits_punctuation():
    tokenizer = fit_tokenizer(TEXTS, None, kind="word")
    encoding = tokenizer.encode("The movie wasn't good, really!", add_special_tokens=False)
    assert encoding.tokens == ["the", "movie", "wasn", "'", "t", "good", ",", "really", "!"]


def test_specials_are_distinct_and_unknown_words_map_to_unk():
    tokenizer = fit_tokenizer(TEXTS, None, kind="word")
    vocab = vocabulary(tokenizer)
    assert vocab[PAD_ID] == "<pad>" and vocab[UNK_ID] == "<unk>"
    encoded = encode(tokenizer, ["the zebra"])
    assert encoded.get(0).tolist() == [tokenizer.token_to_id("the"), UNK_ID]


def test_vocabulary_limits():
    tokenizer = fit_tokenizer(TEXTS, None, kind="word", max_vocab=5)
    assert tokenizer.get_vocab_size() == 5
    rare = fit_tokenizer(TEXTS, None, kind="word", min_freq=4)
    assert "movie" not in rare.get_vocab() and "the" in rare.get_vocab()  # 'movie' occurs 3 times, 'the' 9


@pytest.mark.parametrize("kind", ["word", "char", "bpe", "wordpiece"])
def test_every_kind_fits_encodes_truncates_and_round_trips(tmp_path, kind):
    tokenizer = fit_tokenizer(TEXTS, 4, kind=kind, max_vocab=200)
    encoded = encode(tokenizer, ["the great movie was fine and good", "!"])
    assert encoded.lengths.tolist()[0] == 4
    assert len(encoded) == 2 and encoded.ids.dtype.name == "int32"
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    again = encode(load_tokenizer(path), ["the great movie was fine and good", "!"])
    assert again.ids.tolist() == encoded.ids.tolist()


def test_char_tokens_are_characters():
    tokenizer = fit_tokenizer(TEXTS, None, kind="char")
    assert tokenizer.encode("A  film", add_special_tokens=False).tokens == ["a", " ", "f", "i", "l", "m"]


def test_text_without_tokens_becomes_one_unk():
    tokenizer = fit_tokenizer(TEXTS, None, kind="word")
    encoded = encode(tokenizer, ["\u200b"])
    assert encoded.get(0).tolist() == [UNK_ID]


def test_take_picks_texts_in_the_given_order():
    encoded = EncodedTexts(np.array([5, 6, 7, 8, 9, 10], dtype=np.int32), np.array([0, 2, 3, 6]))
    part = encoded.take(np.array([2, 0]))
    assert [part.get(i).tolist() for i in range(len(part))] == [[8, 9, 10], [5, 6]]
    assert part.lengths.tolist() == [3, 2] and part.ids.dtype == np.int32
    assert len(encoded.take(np.array([], dtype=np.int64))) == 0


def test_long_texts_are_encoded_in_smaller_chunks_with_the_same_ids(monkeypatch):
    import random

    import rnnclf.data.tokenizer as tokenizer_module

    rng = random.Random(0)
    texts = [" ".join(f"w{rng.randrange(300)}" for _ in range(rng.randint(1, 2000))) for _ in range(120)]
    tokenizer = fit_tokenizer(texts, 500)
    whole = encode(tokenizer, texts)
    chunks = []
    original = tokenizer_module._chunks
    monkeypatch.setattr(tokenizer_module, "ENCODE_CHARACTERS", 4000)  # a chunk ends after about 4,000 characters
    monkeypatch.setattr(tokenizer_module, "_chunks", lambda stream: (chunks.append(c) or c for c in original(stream)))
    cut = encode(tokenizer, texts)
    assert len(chunks) > 20 and max(sum(map(len, c)) - len(c[-1]) for c in chunks) < 4000
    assert np.array_equal(whole.ids, cut.ids) and np.array_equal(whole.offsets, cut.offsets)
