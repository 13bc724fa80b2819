"""From canonical reviews to padded splits and a vocabulary learnt on the training reviews only."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from sentiment.classifier.data.reviews import Reviews
from sentiment.classifier.data.splits import Split, carve_validation
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
) -> tuple[dict[str, Split], list[str]]:
    """Train/validation/test splits and the vocabulary, learnt from the fit part of train only.

    The validation reviews are carved from train before the vocabulary is counted, so neither
    validation nor test words leak into the model's inputs.
    """
    tokens = {
        split: [tokenize(text) for text, _ in tqdm(items, desc=f"tokenising {split}", leave=False)]
        for split, items in reviews.items()
    }
    labels = {split: np.array([label for _, label in items]) for split, items in reviews.items()}
    fit, validation = carve_validation(
        labels["train"], validation_split=validation_split, seed=seed
    )
    vocabulary = build_vocabulary((tokens["train"][i] for i in fit), vocab_size)
    word_ids = word_id_map(vocabulary)
    shape = {"max_length": max_length, "padding": padding, "truncating": truncating}
    parts = {
        "train": ([tokens["train"][i] for i in fit], labels["train"][fit]),
        "validation": ([tokens["train"][i] for i in validation], labels["train"][validation]),
        "test": (tokens["test"], labels["test"]),
    }
    splits = {name: _split(toks, labs, word_ids, **shape) for name, (toks, labs) in parts.items()}
    return splits, vocabulary
