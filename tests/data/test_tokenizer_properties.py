"""Property-based tests of the tokenizer (collate and bucketing properties live in test_batching.py)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from rnnclf.data.tokenizer import UNK_ID, encode, fit_tokenizer, load_tokenizer

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "Pack my box with five dozen liquor jugs!",
    "abc, def; ghi?",
] * 2
WORDS = fit_tokenizer(CORPUS, None, kind="word")
CHARS = fit_tokenizer(CORPUS, None, kind="char")
text_strategy = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), max_size=80)


@settings(max_examples=150, deadline=None)
@given(text_strategy)
def test_saved_tokenizer_encodes_identically(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    WORDS.save(str(path))
    assert encode(load_tokenizer(path), [text]).ids.tolist() == encode(WORDS, [text]).ids.tolist()


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,!?", min_size=1, max_size=80).filter(lambda t: t.strip()))
def test_char_tokens_decode_back_to_the_normalised_text(text):
    ids = encode(CHARS, [text]).ids.tolist()
    tokens = [CHARS.id_to_token(i) for i in ids]
    assert UNK_ID not in ids  # the corpus is a pangram with these punctuation marks
    assert "".join(tokens) == " ".join(text.split())


@settings(max_examples=150, deadline=None)
@given(st.lists(text_strategy, min_size=1, max_size=20))
def test_every_text_gets_at_least_one_known_id(texts):
    encoded = encode(WORDS, texts)
    assert len(encoded) == len(texts)
    assert (encoded.lengths >= 1).all()
    assert ((encoded.ids >= 0) & (encoded.ids < WORDS.get_vocab_size())).all()
