"""Tokenisation, vocabulary and padding: the Python twin of the exported model's vectoriser.

`sentiment.classifier.serving.export.ReviewVectorizer` does the same in TensorFlow ops; a test
holds them equal.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD_ID = 0
OOV_ID = 1
FIRST_WORD_ID = 2
# Patterns shared with the TensorFlow vectoriser (RE2 reads them the same way).
LINE_BREAK_PATTERN = r"(?i)<br[ \t\r\n]*/?>"  # no \s: RE2 and Python differ on it
NON_TOKEN_PATTERN = r"[^a-z0-9']+"

_LINE_BREAK = re.compile(LINE_BREAK_PATTERN)
_NON_TOKEN = re.compile(NON_TOKEN_PATTERN)
# tokenize finds a word exactly when one of these is left once HTML line breaks are gone.
_WORD_CHARACTER = re.compile(r"[A-Za-z0-9']")
# ASCII-only lower-casing, as tf.strings.lower does: str.lower() would also fold e.g. the Kelvin
# sign into "k" and make Python and the exported model disagree.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and numbers (apostrophes kept), HTML line breaks dropped."""
    text = _LINE_BREAK.sub(" ", text).translate(_ASCII_LOWER)
    return _NON_TOKEN.sub(" ", text).split()


def has_words(text: str) -> bool:
    """Whether `tokenize` finds a word, about 10 times faster on IMDB reviews."""
    return _WORD_CHARACTER.search(_LINE_BREAK.sub(" ", text)) is not None


def build_vocabulary(token_lists: Iterable[Sequence[str]], vocab_size: int) -> list[str]:
    """The vocab_size - 2 most frequent words, ties broken alphabetically (deterministic).

    Id 0 is padding and id 1 out-of-vocabulary, so word i of the list gets id i + 2.
    """
    counts = Counter(word for tokens in token_lists for word in tokens)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, _ in ranked[: vocab_size - FIRST_WORD_ID]]


def encode(tokens: Sequence[str], word_ids: dict[str, int]) -> list[int]:
    """Token ids, with OOV_ID for words outside the vocabulary."""
    return [word_ids.get(word, OOV_ID) for word in tokens]


def word_id_map(vocabulary: Sequence[str]) -> dict[str, int]:
    """word -> id for a vocabulary list from `build_vocabulary`."""
    return {word: index + FIRST_WORD_ID for index, word in enumerate(vocabulary)}


def pad(
    sequences: Sequence[Sequence[int]], *, max_length: int, padding: str, truncating: str
) -> np.ndarray:
    """A (len(sequences), max_length) int32 matrix, padded with PAD_ID and truncated as asked.

    truncating="pre" keeps a long review's last max_length tokens (the ending often carries the
    verdict); padding="pre" puts the zeros before the words.
    """
    padded = np.full((len(sequences), max_length), PAD_ID, dtype=np.int32)
    for row, ids in enumerate(sequences):
        kept = ids[-max_length:] if truncating == "pre" else ids[:max_length]
        if not kept:
            continue
        if padding == "pre":
            padded[row, max_length - len(kept) :] = kept
        else:
            padded[row, : len(kept)] = kept
    return padded


def vectorize(
    token_lists: Iterable[Sequence[str]],
    word_ids: dict[str, int],
    *,
    max_length: int,
    padding: str,
    truncating: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Padded token ids (n, max_length) int32 and each review's unpadded length (n,) int32."""
    sequences = [encode(tokens, word_ids) for tokens in token_lists]
    lengths = np.array([len(ids) for ids in sequences], dtype=np.int32)
    return pad(sequences, max_length=max_length, padding=padding, truncating=truncating), lengths
