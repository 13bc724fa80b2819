"""The model's own Keras layers, beside Keras' stock ones.

Inference layers: MaskedGlobalMaxPooling1D (pooling that respects the mask) and WordDropout
(identity outside training). Adversarial training's layers (NormalisedEmbedding and
EmbeddingPerturbation, Miyato et al. 2017): they exist only while training; the saved model is
folded back to an ordinary embedding (`network.fold_for_inference`). The faster twins of Keras'
LSTM and Embedding are in fast_layers.py.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from sentiment.classifier.model.fast_layers import DenseGradientEmbedding

# Added to variances and norms so that a constant embedding or a zero gradient divides safely.
VARIANCE_FLOOR = 1e-6
NORM_FLOOR = 1e-12
# The names of the layers adversarial training reaches into, and the fold replaces.
EMBEDDING = "embedding"
PERTURBATION = "embedding_perturbation"


@keras.saving.register_keras_serializable(package="sentiment")
class MaskedGlobalMaxPooling1D(layers.Layer):
    """Each feature's maximum over a review's unmasked steps (0 for a review with none).

    Keras' GlobalMaxPooling1D ignores the mask, so padding's zeros would enter the maximum and a
    review's score would depend on how much padding its batch gave it.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        steps = ops.expand_dims(ops.cast(mask, "bool"), -1)
        maximum = ops.max(ops.where(steps, inputs, float("-inf")), axis=1)
        return ops.where(ops.any(steps, axis=1), maximum, 0.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="sentiment")
class WordDropout(layers.Layer):
    """While training, replace each word of a review by the out-of-vocabulary id with a probability.

    A model that cannot count on any single word learns from many: on IMDB it keeps the network
    from leaning on the names of the films in its training reviews, which the test films lack.
    Padding (id 0) is left alone, so masks are unchanged.
    """

    def __init__(self, rate: float, out_of_vocabulary_id: int = 1, seed: int | None = None, **kw):
        super().__init__(**kw)
        self.rate = rate
        self.out_of_vocabulary_id = out_of_vocabulary_id
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, token_ids, training=False):
        if not training or not self.rate:
            return token_ids
        dropped = keras.random.uniform(ops.shape(token_ids), seed=self.seed_generator) < self.rate
        words = ops.not_equal(token_ids, 0)
        oov = ops.full_like(token_ids, self.out_of_vocabulary_id)
        return ops.where(ops.logical_and(dropped, words), oov, token_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return super().get_config() | {
            "rate": self.rate,
            "out_of_vocabulary_id": self.out_of_vocabulary_id,
            "seed": self.seed,
        }


def normalised_table(
    table: np.ndarray | tf.Tensor, frequencies: np.ndarray | tf.Tensor
) -> tf.Tensor:
    """Each embedding dimension shifted and scaled to mean 0, variance 1 under word frequency."""
    weights = tf.cast(frequencies, table.dtype)
    weights = weights / tf.maximum(tf.reduce_sum(weights), NORM_FLOOR)
    mean = tf.tensordot(weights, table, axes=1)
    variance = tf.tensordot(weights, tf.square(table - mean), axes=1)
    return (table - mean) * tf.math.rsqrt(variance + VARIANCE_FLOOR)


@keras.saving.register_keras_serializable(package="sentiment")
class NormalisedEmbedding(DenseGradientEmbedding):
    """An embedding whose vectors are normalised per dimension, weighted by word frequency.

    The frequencies are a non-trainable weight, set from the training reviews before fitting
    (`word_frequencies`); until then every word weighs the same.
    """

    def build(self, input_shape=None):
        super().build(input_shape)
        self.word_frequencies = self.add_weight(
            shape=(self.input_dim,),
            initializer="ones",
            trainable=False,
            name="word_frequencies",
        )

    def call(self, inputs):
        table = normalised_table(tf.convert_to_tensor(self.embeddings), self.word_frequencies)
        ids = tf.cast(inputs, tf.int32)
        return tf.cast(tf.gather(table, ids), self.compute_dtype)


@keras.saving.register_keras_serializable(package="sentiment")
class EmbeddingPerturbation(layers.Layer):
    """Identity, except while a training step sets a perturbation to add to the embeddings.

    It keeps the last embeddings and mask it saw, so the training step can take the loss
    gradient with respect to them.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.perturbation = None
        self.seen = None

    def call(self, embedded, mask=None):
        self.seen = (embedded, mask)
        if self.perturbation is None:
            return embedded
        return embedded + tf.cast(self.perturbation, embedded.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
