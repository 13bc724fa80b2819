"""The baseline's n-gram model in TensorFlow ops: raw review strings in, its probabilities out, as
`NgramModel.probabilities_of_texts` gives them, so a SavedModel can serve it without Python.

Every word of a text is read (no vocabulary cut, no `max_length`), the text tokenised as the
network's vectoriser tokenises it; each n-gram counts once per text.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from sentiment.classifier.data.text import LINE_BREAK_PATTERN, NON_TOKEN_PATTERN
from sentiment.classifier.model.ngrams import NgramModel

NGRAM_SEPARATOR = " "  # the words of an n-gram, joined: tokens never hold a space


def spelled_ngrams(model: NgramModel) -> list[str]:
    """Each kept n-gram of the model as its words joined by NGRAM_SEPARATOR, in the weights'
    order."""
    words = np.array(("", *model.words), dtype=object)  # word number 0: after the n-gram's end
    return [
        NGRAM_SEPARATOR.join(word for word in words[row] if word) for row in model.ngrams.tolist()
    ]


def tokens_of(reviews: tf.Tensor) -> tf.RaggedTensor:
    """Review strings (batch,) -> their tokens (batch, words), as `data.text.tokenize` gives:
    the one tokeniser of every served model (the network's vectoriser and the n-gram model)."""
    text = tf.strings.regex_replace(reviews, LINE_BREAK_PATTERN, " ")
    text = tf.strings.lower(text)  # ASCII only, like data.text
    text = tf.strings.regex_replace(text, NON_TOKEN_PATTERN, " ")
    return tf.strings.split(text)


@keras.saving.register_keras_serializable(package="sentiment")
class NgramScorer(layers.Layer):
    """Review strings (batch,) -> the n-gram model's probabilities: (batch, 1), the positive
    label's, for two labels; (batch, N), each label's, for more, as the network's output.

    The n-grams are looked up in a string table (a StringLookup); row 0 of the weights, any
    n-gram the model does not keep, is zero. The weights and
    the sums are float64, as the Python model's.
    """

    def __init__(self, ngrams: list[str], longest: int, targets: int, **kwargs):
        super().__init__(**kwargs)
        self.ngrams, self.longest, self.targets = list(ngrams), longest, targets
        self.lookup = layers.StringLookup(
            vocabulary=self.ngrams or None, mask_token=None, num_oov_indices=1, name="ngram_ids"
        )
        self.table = self.add_weight(
            shape=(len(self.ngrams) + 1, targets),
            dtype="float64",
            initializer="zeros",
            trainable=False,
            name="weights",
        )
        self.intercepts = self.add_weight(
            shape=(targets,), dtype="float64", initializer="zeros", trainable=False, name="bias"
        )

    def set_model(self, model: NgramModel) -> None:
        """Fill the weights from the model whose n-grams the layer was built with."""
        self.table.assign(np.concatenate([np.zeros((1, self.targets)), model.weights]))
        self.intercepts.assign(model.intercepts)

    def build(self, input_shape=None) -> None:
        self.built = True

    def call(self, reviews):
        tokens = tokens_of(reviews)
        grams = tf.strings.ngrams(
            tokens, ngram_width=list(range(1, self.longest + 1)), separator=NGRAM_SEPARATOR
        )
        ids = tf.cast(self.lookup(grams.flat_values), tf.int64)
        rows = tf.cast(grams.value_rowids(), tf.int64)
        # Each (text, n-gram) pair once: an n-gram counts once however often the text has it.
        width = tf.constant(len(self.ngrams) + 1, tf.int64)
        pairs, _ = tf.unique(rows * width + ids)
        batch = tf.shape(reviews, out_type=tf.int64)[0]
        sums = tf.math.unsorted_segment_sum(
            tf.gather(self.table, pairs % width), pairs // width, num_segments=batch
        )
        probabilities = tf.sigmoid(sums + self.intercepts)
        if self.targets > 1:
            total = tf.reduce_sum(probabilities, axis=1, keepdims=True)
            probabilities = probabilities / tf.maximum(total, 1e-12)
        return tf.cast(probabilities, tf.float32)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.targets)

    def get_config(self) -> dict:
        return super().get_config() | {
            "ngrams": self.ngrams,
            "longest": self.longest,
            "targets": self.targets,
        }


def baseline_end_to_end_model(model: NgramModel) -> keras.Model:
    """The n-gram model on raw strings: (batch,) strings -> its probabilities, shaped as a
    network's output ((batch, 1) or (batch, N))."""
    reviews = keras.Input(shape=(), dtype="string", name="review")
    scorer = NgramScorer(
        spelled_ngrams(model),
        longest=model.ngrams.shape[1],
        targets=model.intercepts.shape[0],
        name="ngram_scorer",
    )
    outputs = scorer(reviews)
    scorer.set_model(model)
    return keras.Model(reviews, outputs, name="baseline_sentiment")
