"""From canonical reviews to padded splits and a vocabulary learnt on the training reviews only."""

from __future__ import annotations

from itertools import chain, repeat

import numpy as np

from sentiment.classifier.data.reviews import VALIDATION, Reviews
from sentiment.classifier.data.splits import (
    NO_LABEL,
    Split,
    Words,
    carve_split,
    check_stratifiable,
)
from sentiment.classifier.data.text import FIRST_WORD_ID, OOV_ID, pad, tokenize
from sentiment.forked import SHARED, side_by_side

PARTS = ("train", "validation", "test")  # train: the reviews the model fits on


def number_words(
    reviews: dict[str, Reviews],
    *,
    validation_split: float,
    seed: int,
    label_names: list[str] | None = None,
) -> tuple[dict[str, Words], list[str]]:
    """Every review's words as numbers, for the fit part of train (`train`), the validation
    reviews and test; and the fit part's words, word n at index n - 1.

    A validation split the data gives is used as given; otherwise the validation reviews are
    carved from train (seeded, stratified by label). Words are numbered in the order the fit
    reviews first use them; a word they never use gets one number for all such words, so
    nothing of the validation or test words leaks into what is learnt. label_names names the
    labels in errors (default: their indices).

    The splits are tokenised side by side (`_number_split`), each numbering its own words, then
    renumbered as the fit reviews number theirs.
    """
    numbered = side_by_side(
        _number_split, list(reviews), {"reviews": reviews}, "tokenising the reviews"
    )
    local = dict(zip(reviews, numbered, strict=True))
    labels = {split: np.array([label for _, label in items]) for split, items in reviews.items()}
    train_labels = labels["train"]
    if VALIDATION in reviews:
        fit, held_out = np.arange(len(train_labels)), None
    else:
        names = label_names or [str(index) for index in range(int(train_labels.max()) + 1)]
        check_stratifiable(
            train_labels, names, share=validation_split, what="validation_split", where="train"
        )
        fit, held_out = carve_split(train_labels, share=validation_split, seed=seed)
    train_words, train_numbers, train_offsets = local["train"]
    fit_numbers, fit_offsets = _reviews_at(train_numbers, train_offsets, fit)
    seen, first_use = np.unique(fit_numbers, return_index=True)
    in_use_order = seen[np.argsort(first_use)]  # train's numbers of the fit words, first use first
    words = [train_words[number - 1] for number in in_use_order]
    distinct = np.int64(len(words))
    unseen = len(words) + 1
    from_train = np.full(len(train_words) + 1, unseen, dtype=np.int32)  # train's number: fit's
    from_train[in_use_order] = np.arange(1, unseen, dtype=np.int32)
    parts = {"train": (from_train[fit_numbers], fit_offsets, train_labels[fit])}
    if held_out is not None:
        held_numbers, held_offsets = _reviews_at(train_numbers, train_offsets, held_out)
        parts[VALIDATION] = (from_train[held_numbers], held_offsets, train_labels[held_out])
    fit_number = {word: number for number, word in enumerate(words, start=1)}
    for split in (VALIDATION, "test"):
        if split in parts:
            continue
        split_words, split_numbers, offsets = local[split]
        to_fit = np.fromiter(
            chain([unseen], map(fit_number.get, split_words, repeat(unseen))),
            dtype=np.int32,
            count=len(split_words) + 1,
        )
        parts[split] = (to_fit[split_numbers], offsets, labels[split])
    dtype = label_dtype(np.concatenate([part_labels for _, _, part_labels in parts.values()]))
    numbered = {}
    for name in PARTS:
        numbers, offsets, part_labels = parts[name]
        numbered[name] = Words(
            numbers=numbers, offsets=offsets, labels=part_labels.astype(dtype), distinct=distinct
        )
    return numbered, words


def _number_split(split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A split's reviews tokenised, their words numbered among themselves in order of first use
    (from 1): the words, every token's number end to end, and each review's offsets into them."""
    token_lists = [tokenize(text) for text, _ in SHARED["reviews"][split]]
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    words = list(dict.fromkeys(chain.from_iterable(token_lists)))
    number = {word: index for index, word in enumerate(words, start=1)}
    tokens = chain.from_iterable(token_lists)
    numbers = np.fromiter(map(number.__getitem__, tokens), dtype=np.int32, count=int(offsets[-1]))
    return words, numbers, offsets


def _reviews_at(numbers: np.ndarray, offsets: np.ndarray, rows: np.ndarray):
    """The numbers of the reviews at `rows`, in that order, end to end; and their offsets."""
    lengths = np.diff(offsets)[rows]
    kept_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    starts = offsets[:-1][rows]
    index = np.repeat(starts - kept_offsets[:-1], lengths) + np.arange(kept_offsets[-1])
    return numbers[index], kept_offsets


def label_dtype(labels: np.ndarray) -> type:
    """int8 for up to 128 labels (the splits' usual type), int32 for more: never wrapped."""
    return np.int8 if not len(labels) or labels.max() <= np.iinfo(np.int8).max else np.int32


def most_used(train: Words, words: list[str], vocab_size: int) -> list[int]:
    """The numbers of the vocab_size - 2 words the fit reviews use most, ties broken
    alphabetically (deterministic): the vocabulary, word i of it getting id i + 2 (id 0 is
    padding and id 1 out-of-vocabulary)."""
    counts = np.bincount(train.numbers, minlength=len(words) + 2).tolist()
    order = sorted(range(1, len(words) + 1), key=lambda n: (-counts[n], words[n - 1]))
    return order[: max(vocab_size - FIRST_WORD_ID, 0)]


def padded_split(
    part: Words, token_id: np.ndarray, *, max_length: int, padding: str, truncating: str
) -> Split:
    """A split's padded token ids from its words, token_id[n] the id of word number n."""
    sequences = np.split(token_id[part.numbers], part.offsets[1:-1]) if len(part) else []
    token_ids = pad(sequences, max_length=max_length, padding=padding, truncating=truncating)
    lengths = np.diff(part.offsets).astype(np.int32)
    return Split(token_ids=token_ids, labels=part.labels, lengths=lengths)


def splits_from_words(
    words: dict[str, Words],
    spelled: list[str],
    *,
    vocab_size: int,
    max_length: int,
    padding: str,
    truncating: str,
) -> tuple[dict[str, Split], list[str]]:
    """Padded splits and the vocabulary (`most_used`) from `number_words`' results."""
    kept = most_used(words["train"], spelled, vocab_size)
    vocabulary = [spelled[number - 1] for number in kept]
    token_id = np.full(len(spelled) + 2, OOV_ID, dtype=np.int32)  # by word number; last: unseen
    token_id[np.array(kept, dtype=np.int64)] = np.arange(
        FIRST_WORD_ID, FIRST_WORD_ID + len(kept), dtype=np.int32
    )
    shape = {"max_length": max_length, "padding": padding, "truncating": truncating}
    return {name: padded_split(words[name], token_id, **shape) for name in PARTS}, vocabulary


def prepare_splits(
    reviews: dict[str, Reviews],
    *,
    vocab_size: int,
    max_length: int,
    padding: str,
    truncating: str,
    validation_split: float,
    seed: int,
    label_names: list[str] | None = None,
) -> tuple[dict[str, Split], list[str]]:
    """Train/validation/test splits and the vocabulary, learnt from the fit part of train only.

    The validation reviews are the data's or carved from train before the vocabulary is
    counted, so neither validation nor test words leak into the model's inputs (`number_words`).
    """
    words, spelled = number_words(
        reviews, validation_split=validation_split, seed=seed, label_names=label_names
    )
    return splits_from_words(
        words,
        spelled,
        vocab_size=vocab_size,
        max_length=max_length,
        padding=padding,
        truncating=truncating,
    )


def unlabelled_split(
    texts: list[str], vocabulary: list[str], *, max_length: int, padding: str, truncating: str
) -> Split:
    """The unlabelled texts with words, as token ids of the training reviews' vocabulary, padded
    as the labelled splits are; every label NO_LABEL. A text without a word is left out."""
    ids = {word: index for index, word in enumerate(vocabulary, start=FIRST_WORD_ID)}
    sequences = [[ids.get(word, OOV_ID) for word in tokenize(text)] for text in texts]
    sequences = [sequence for sequence in sequences if sequence]
    token_ids = pad(sequences, max_length=max_length, padding=padding, truncating=truncating)
    lengths = np.fromiter(map(len, sequences), dtype=np.int32, count=len(sequences))
    return Split(
        token_ids=token_ids, labels=np.full(len(sequences), NO_LABEL, np.int8), lengths=lengths
    )
