"""What training minimises and reports, for two labels (one sigmoid output) or more (a softmax)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf


def loss_for(classes: int) -> keras.losses.Loss:
    """Cross-entropy of the positive label's probability (two labels) or of the softmax (more)."""
    if classes == 2:
        return keras.losses.BinaryCrossentropy()
    return keras.losses.SparseCategoricalCrossentropy()


def binary_divergence(reference: tf.Tensor, moved: tf.Tensor) -> tf.Tensor:
    """Mean KL divergence between Bernoulli predictions: reference (fixed) to moved."""
    epsilon = keras.config.epsilon()
    p = tf.clip_by_value(reference, epsilon, 1.0 - epsilon)
    q = tf.clip_by_value(moved, epsilon, 1.0 - epsilon)
    divergence = p * (tf.math.log(p) - tf.math.log(q)) + (1.0 - p) * (
        tf.math.log(1.0 - p) - tf.math.log(1.0 - q)
    )
    return tf.reduce_mean(divergence)


def categorical_divergence(reference: tf.Tensor, moved: tf.Tensor) -> tf.Tensor:
    """Mean KL divergence between categorical predictions (batch, N): reference to moved."""
    epsilon = keras.config.epsilon()
    p = tf.clip_by_value(reference, epsilon, 1.0)
    q = tf.clip_by_value(moved, epsilon, 1.0)
    return tf.reduce_mean(tf.reduce_sum(p * (tf.math.log(p) - tf.math.log(q)), axis=-1))


def divergence_for(classes: int) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The divergence between two predictions of a model of `classes` labels."""
    return binary_divergence if classes == 2 else categorical_divergence


def accuracy_metric(classes: int) -> keras.metrics.Metric:
    """Accuracy as Keras counts it: at 0.5 for two labels, the likeliest label for more."""
    if classes == 2:
        return keras.metrics.BinaryAccuracy(name="accuracy")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
