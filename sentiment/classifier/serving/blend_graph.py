"""The blend in TensorFlow ops: the network's and the baseline's probabilities combined as
`model/blend.py` combines them, so one SavedModel on raw text can serve the blend."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from sentiment.classifier.model.blend import COMBINATIONS, EPSILON


@keras.saving.register_keras_serializable(package="sentiment")
class Blend(layers.Layer):
    """[network, baseline] probabilities, each (batch, 1) for two labels or (batch, N) for more,
    -> the blend's, of the same shape: the network's weight `weight`, the baseline's the rest.
    Weight 1 passes the network's probabilities through, weight 0 the baseline's."""

    def __init__(self, weight: float, combination: str, **kwargs):
        super().__init__(**kwargs)
        if combination not in COMBINATIONS:
            raise ValueError(f"combination {combination!r} is not one of {', '.join(COMBINATIONS)}")
        self.weight, self.combination = float(weight), combination

    def call(self, inputs):
        network, baseline = inputs
        if self.weight == 1:
            return network
        if self.weight == 0:
            return baseline
        network, baseline = tf.cast(network, tf.float64), tf.cast(baseline, tf.float64)
        weight = tf.constant(self.weight, tf.float64)
        if self.combination == "probability":
            blended = weight * network + (1 - weight) * baseline
        elif network.shape[-1] == 1:
            blended = tf.sigmoid(weight * _log_odds(network) + (1 - weight) * _log_odds(baseline))
        else:
            logs = weight * tf.math.log(tf.clip_by_value(network, EPSILON, 1.0)) + (
                1 - weight
            ) * tf.math.log(tf.clip_by_value(baseline, EPSILON, 1.0))
            blended = tf.nn.softmax(logs, axis=-1)
        return tf.cast(blended, tf.float32)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        return super().get_config() | {"weight": self.weight, "combination": self.combination}


def _log_odds(probabilities: tf.Tensor) -> tf.Tensor:
    clipped = tf.clip_by_value(probabilities, EPSILON, 1 - EPSILON)
    return tf.math.log(clipped) - tf.math.log1p(-clipped)


def blend_end_to_end_model(
    network: keras.Model, baseline: keras.Model, *, weight: float, combination: str
) -> keras.Model:
    """One model on raw strings: both end-to-end models read the same reviews, their
    probabilities blended (`Blend`)."""
    reviews = keras.Input(shape=(), dtype="string", name="review")
    blended = Blend(weight, combination, name="blend")([network(reviews), baseline(reviews)])
    return keras.Model(reviews, blended, name="blended_sentiment")
