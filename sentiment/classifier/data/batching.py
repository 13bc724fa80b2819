"""Batches of reviews of similar length, each cut to its longest review: fewer padded steps.

A recurrent layer's cost on CPU is per time step, and IMDB's median review (about 174 tokens) is
far shorter than the 300-token pad. Grouping reviews of similar length and cutting every batch to
its longest review runs about a third fewer steps. With padding masked this is exact: only padding
columns are cut, and masked steps change nothing.
"""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

from sentiment.classifier.data.splits import Split

# Reviews are sorted by length within windows of this many batches: long enough to group similar
# lengths (the mean padded width comes within 4% of the mean length on IMDB), short enough that
# every epoch still mixes reviews of all lengths in a random order of batches.
SORT_WINDOW_BATCHES = 20


def length_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None,
    *,
    by_length: bool,
) -> list[np.ndarray]:
    """Row indices of each batch.

    With an rng the rows are shuffled (and, by_length, sorted by length within windows, the
    batches then shuffled); without one they keep their order (sorted by length when by_length).
    """
    rows = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    if by_length:
        window = batch_size * SORT_WINDOW_BATCHES if rng is not None else len(rows)
        rows = (
            np.concatenate(
                [
                    part[np.argsort(lengths[part], kind="stable")]
                    for part in np.array_split(rows, range(window, len(rows), window))
                ]
            )
            if len(rows)
            else rows
        )
    batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    if by_length and rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def cut_padding(token_ids: np.ndarray) -> np.ndarray:
    """Drop the columns that are padding in every row (keeping at least one), whichever side."""
    holds_words = token_ids.any(axis=0)
    if not holds_words.any():
        return token_ids[:, :1]
    return token_ids[:, holds_words]


def batch_dataset(
    split: Split,
    *,
    batch_size: int,
    seed: int | None,
    by_length: bool,
    with_labels: bool = True,
) -> tf.data.Dataset:
    """A dataset of (token ids, labels) batches; reshuffled every epoch when a seed is given.

    by_length groups similar lengths and cuts each batch to its longest review (only exact when
    the model masks padding); otherwise every batch keeps the full padded width.
    """
    lengths = np.minimum(split.lengths, split.token_ids.shape[1])
    labels = split.labels.astype(np.float32)
    epochs = itertools.count()

    def generate():
        rng = None if seed is None else np.random.default_rng([seed, next(epochs)])
        for rows in length_batches(lengths, batch_size, rng, by_length=by_length):
            token_ids = split.token_ids[rows]
            if by_length:
                token_ids = cut_padding(token_ids)
            yield (token_ids, labels[rows]) if with_labels else token_ids

    token_spec = tf.TensorSpec(shape=(None, None), dtype=tf.int32)
    label_spec = tf.TensorSpec(shape=(None,), dtype=tf.float32)
    signature = (token_spec, label_spec) if with_labels else token_spec
    batches = -(-len(split) // batch_size)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    # No autotuning: its background thread makes destroying each epoch's spent iterator wait for
    # the thread's next wake-up (seconds, at random epochs); a fixed prefetch needs no tuning.
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(2)
    return dataset.with_options(options)


# The unlabelled batches' shuffles draw from their own stream of the seed, apart from the
# labelled batches'.
UNLABELLED_STREAM = 1


def with_unlabelled(
    labelled: tf.data.Dataset,
    unlabelled: Split,
    *,
    batch_size: int,
    seed: int,
    by_length: bool,
) -> tf.data.Dataset:
    """Each labelled batch (token ids, labels) as ((token ids, unlabelled token ids), labels):
    beside it, `batch_size` unlabelled texts, drawn in a seeded order that reshuffles at every
    pass over them and at every epoch; as many batches as the labelled dataset has. There must
    be at least `batch_size` unlabelled texts."""
    lengths = np.minimum(unlabelled.lengths, unlabelled.token_ids.shape[1])
    epochs = itertools.count()

    def generate():
        epoch = next(epochs)
        for passes in itertools.count():
            rng = np.random.default_rng([seed, UNLABELLED_STREAM, epoch, passes])
            for rows in length_batches(lengths, batch_size, rng, by_length=by_length):
                if len(rows) < batch_size:
                    continue  # a full batch every step: the last, short one waits for a pass
                token_ids = unlabelled.token_ids[rows]
                yield cut_padding(token_ids) if by_length else token_ids

    texts = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec(shape=(None, None), dtype=tf.int32)
    )
    paired = tf.data.Dataset.zip((labelled, texts)).map(
        lambda batch, unlabelled_ids: ((batch[0], unlabelled_ids), batch[1])
    )
    options = tf.data.Options()
    options.autotune.enabled = False
    batches = int(labelled.cardinality())
    return paired.apply(tf.data.experimental.assert_cardinality(batches)).with_options(options)
