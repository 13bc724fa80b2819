"""From canonical reviews to padded splits and a vocabulary learnt on the training reviews only."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from sentiment.classifier.data.reviews import VALIDATION, Reviews
from sentiment.classifier.data.splits import Split, carve_split, check_stratifiable
from sentiment.classifier.data.text import build_vocabulary, tokenize, vectorize, word_id_map


def _split(
    token_lists: list[list[str]],
    labels: np.ndarray,
    word_ids: dict[str, int],
    *,
    max_length: int,
    padding: str,
    truncating: str,
) -> Split:
    token_ids, lengths = vectorize(
        token_lists, word_ids, max_length=max_length, padding=padding, truncating=truncating
    )
    return Split(token_ids=token_ids, labels=labels.astype(np.int8), lengths=lengths)


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

    A validation split the data gives is used as given; otherwise the validation reviews are
    carved from train (seeded, stratified by label) before the vocabulary is counted, so neither
    validation nor test words leak into the model's inputs. label_names names the labels in
    errors (default: their indices).
    """
    tokens = {
        split: [tokenize(text) for text, _ in tqdm(items, desc=f"tokenising {split}", leave=False)]
        for split, items in reviews.items()
    }
    labels = {split: np.array([label for _, label in items]) for split, items in reviews.items()}
    train_tokens, train_labels = tokens["train"], labels["train"]
    if VALIDATION in reviews:
        fit_part = (train_tokens, train_labels)
        validation_part = (tokens[VALIDATION], labels[VALIDATION])
    else:
        names = label_names or [str(index) for index in range(int(train_labels.max()) + 1)]
        check_stratifiable(
            train_labels, names, share=validation_split, what="validation_split", where="train"
        )
        fit, held_out = carve_split(train_labels, share=validation_split, seed=seed)
        fit_part = ([train_tokens[i] for i in fit], train_labels[fit])
        validation_part = ([train_tokens[i] for i in held_out], train_labels[held_out])
    vocabulary = build_vocabulary(fit_part[0], vocab_size)
    word_ids = word_id_map(vocabulary)
    shape = {"max_length": max_length, "padding": padding, "truncating": truncating}
    test_part = (tokens["test"], labels["test"])
    parts = {"train": fit_part, "validation": validation_part, "test": test_part}
    splits = {name: _split(toks, labs, word_ids, **shape) for name, (toks, labs) in parts.items()}
    return splits, vocabulary
