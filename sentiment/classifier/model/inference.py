"""A trained model's probabilities for padded reviews, fed in batches of similar length."""

from __future__ import annotations

import keras
import numpy as np

from sentiment.classifier.data.batching import cut_padding, length_batches
from sentiment.classifier.data.splits import Split
from sentiment.classifier.model.network import nested_layers


def predict_probabilities(
    model: keras.Model, token_ids: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Probabilities of padded reviews (n, steps), in their order: the positive label's, shape
    (n,), for a two-label model; each label's, shape (n, N), for more.

    A model that masks padding is fed reviews of similar length together, cut to the longest.
    """
    by_length = model_masks_padding(model)
    words = np.count_nonzero(token_ids, axis=1)
    outputs = model.output_shape[-1]
    probabilities = np.empty((len(token_ids), outputs), dtype=np.float32)
    for rows in length_batches(words, batch_size, None, by_length=by_length):
        batch = cut_padding(token_ids[rows]) if by_length else token_ids[rows]
        probabilities[rows] = keras.ops.convert_to_numpy(model.predict_on_batch(batch))
    return probabilities[:, 0] if outputs == 1 else probabilities


def model_masks_padding(model: keras.Model) -> bool:
    """Whether the model's embedding masks padding (then padding columns can be cut)."""
    return any(getattr(layer, "mask_zero", False) for layer in nested_layers(model))


def validation_accuracy(model: keras.Model, validation: Split) -> float:
    """The model's accuracy on the validation reviews as Keras counts it (two labels: at 0.5)."""
    probabilities = predict_probabilities(model, validation.token_ids)
    predicted = probabilities >= 0.5 if probabilities.ndim == 1 else probabilities.argmax(axis=1)
    return float(np.mean(predicted == validation.labels))
