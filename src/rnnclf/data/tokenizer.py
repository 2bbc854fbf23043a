"""Tokenizer and vocabulary on Hugging Face `tokenizers`, fitted on the training split only.

Token ids 0 and 1 are always `<pad>` and `<unk>`. A fitted tokenizer is saved as tokenizer.json
(Hugging Face format, truncation included) and is all that predict needs to turn text into ids.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from rnnclf.data.sparse_rows import SparseRows, concatenate_rows
from rnnclf.errors import RnnclfError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SPECIALS = [PAD, UNK]


def _normalizer(kind: str, lowercase: bool) -> normalizers.Normalizer:
    steps = [normalizers.NFKC()]
    if kind == "char":  # words are split on any whitespace anyway; characters keep one space
        steps += [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def build_tokenizer(
    kind: str = "word", lowercase: bool = True, max_vocab: int = 50_000, min_freq: int = 1
) -> tuple[Tokenizer, trainers.Trainer]:
    """An untrained tokenizer and its trainer: word, char, bpe or wordpiece."""
    # no progress bar of its own: the commands say what they do in their own lines
    common = {"vocab_size": max_vocab, "min_frequency": min_freq, "special_tokens": SPECIALS, "show_progress": False}
    if kind in ("word", "char"):
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(**common)
    elif kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK, continuing_subword_prefix="##"))
        trainer = trainers.BpeTrainer(**common, continuing_subword_prefix="##")
        tokenizer.decoder = decoders.WordPiece(prefix="##")
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
        trainer = trainers.WordPieceTrainer(**common)
        tokenizer.decoder = decoders.WordPiece()
    tokenizer.normalizer = _normalizer(kind, lowercase)
    if kind == "char":
        # every character is a token, spaces included (runs of whitespace are one space)
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")
    else:
        # like torchtext's basic_english: words, with each punctuation mark split off
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer, trainer


def fit_tokenizer(texts: Collection[str], max_length: int | None, **settings) -> Tokenizer:
    """Learn the vocabulary from the training texts (a list, or FileTexts read in order); truncation to
    max_length travels with the tokenizer. `settings` are build_tokenizer's (the config's tokenizer section)."""
    tokenizer, trainer = build_tokenizer(**settings)
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    if tokenizer.token_to_id(PAD) != PAD_ID or tokenizer.token_to_id(UNK) != UNK_ID:
        raise AssertionError("special tokens must be ids 0 and 1")
    if max_length is not None:
        tokenizer.enable_truncation(max_length)
    return tokenizer


def extend_vocabulary(tokenizer: Tokenizer, texts: Collection[str], max_length: int | None, **settings) -> Tokenizer:
    """An earlier run's word or char tokenizer with the new training texts' tokens that it lacks appended (most
    frequent first, min_freq applied, up to max_vocab in all): every token keeps its id, so the earlier model's
    embedding rows stay where they are. Subword tokenizers (bpe, wordpiece) are returned as they are: they read
    new words in their known pieces. Truncation is set to `max_length`."""
    extended = tokenizer
    if settings.get("kind", "word") in ("word", "char"):
        known = tokenizer.get_vocab()
        fitted = fit_tokenizer(texts, None, **settings).get_vocab()
        room = max(settings.get("max_vocab", 50_000) - len(known), 0)
        new = [token for token in sorted(fitted, key=fitted.__getitem__) if token not in known][:room]
        spec = json.loads(tokenizer.to_str())
        spec["model"]["vocab"].update({token: len(known) + i for i, token in enumerate(new)})
        extended = Tokenizer.from_str(json.dumps(spec))
    else:
        extended = Tokenizer.from_str(tokenizer.to_str())
    if max_length is None:
        extended.no_truncation()
    else:
        extended.enable_truncation(max_length)
    return extended


def load_tokenizer(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception on bad JSON
        raise RnnclfError(f"{path}: not a readable tokenizer file ({exc})") from None


@dataclass
class EncodedTexts:
    """Token ids of many texts, flat: text i is ids[offsets[i]:offsets[i + 1]]."""

    ids: np.ndarray  # int32
    offsets: np.ndarray  # int64, len(texts) + 1
    wide: SparseRows | None = None  # the same texts' n-gram features, for a model with a wide head

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    def take(self, index: np.ndarray) -> EncodedTexts:
        """The texts at `index`, in that order, as a new EncodedTexts."""
        lengths = self.lengths[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        parts = [self.get(i) for i in index]
        ids = np.concatenate(parts).astype(np.int32, copy=False) if parts else np.zeros(0, dtype=np.int32)
        return EncodedTexts(ids, offsets, None if self.wide is None else self.wide.take(index))


def concatenate(parts: list[EncodedTexts]) -> EncodedTexts:
    """The texts of every part, in order, as one EncodedTexts; their n-gram rows too when every part has them."""
    ids = np.concatenate([part.ids for part in parts]).astype(np.int32, copy=False)
    lengths = np.concatenate([part.lengths for part in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    wide = [part.wide for part in parts]
    return EncodedTexts(ids, offsets, concatenate_rows(wide) if all(rows is not None for rows in wide) else None)


CHARS_PER_TOKEN_CAP = 64  # a text longer than max_length * this is cut before tokenizing: bounded memory
ENCODE_CHUNK = 20_000
ENCODE_CHARACTERS = 4_000_000  # about 800k tokens a chunk: a few hundred MB of token lists at most


def character_limit(tokenizer: Tokenizer) -> int | None:
    """How many characters of a text the tokenizer is given (None: all): max_length * CHARS_PER_TOKEN_CAP."""
    return tokenizer.truncation["max_length"] * CHARS_PER_TOKEN_CAP if tokenizer.truncation else None


def encode(tokenizer: Tokenizer, texts: Iterable[str]) -> EncodedTexts:
    """Batch-encode texts (in Rust, in parallel). A text with no tokens left becomes one `<unk>`.

    Texts are taken ENCODE_CHUNK at a time (fewer when long: ENCODE_CHARACTERS), so a stream of them (FileTexts)
    is never all in memory, and neither are the token lists of long documents.
    With truncation set, each text is first cut to max_length * CHARS_PER_TOKEN_CAP characters, so a
    100 MB line costs no more than a long document (the tokenizer would otherwise split all of it).
    """
    limit = character_limit(tokenizer)
    lengths, chunks = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int32)]
    for part in _chunks(text[:limit] for text in texts):  # text[:None]: all of it
        id_lists = [encoding.ids or [UNK_ID] for encoding in _encode_batch(tokenizer)(part, add_special_tokens=False)]
        lengths.append(np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists)))
        chunks.append(
            np.fromiter(itertools.chain.from_iterable(id_lists), dtype=np.int32, count=int(lengths[-1].sum()))
        )
    offsets = np.zeros(sum(map(len, lengths)) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(lengths), out=offsets[1:])
    return EncodedTexts(np.concatenate(chunks), offsets)


def _chunks(texts: Iterable[str]) -> Iterator[list[str]]:
    """Texts in lists of at most ENCODE_CHUNK texts and about ENCODE_CHARACTERS characters: the token lists of one
    chunk are held at once (Python ints), so long documents come in fewer per chunk."""
    part, characters = [], 0
    for text in texts:
        part.append(text)
        characters += len(text)
        if len(part) == ENCODE_CHUNK or characters >= ENCODE_CHARACTERS:
            yield part
            part, characters = [], 0
    if part:
        yield part


def _encode_batch(tokenizer: Tokenizer):
    """encode_batch_fast (tokenizers >= 0.21) skips the character offsets we never use."""
    return getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)


def vocabulary(tokenizer: Tokenizer) -> list[str]:
    """Token strings in id order."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    words = [""] * len(vocab)
    for word, index in vocab.items():
        words[index] = word
    return words
