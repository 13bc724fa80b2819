"""The classifier: token ids -> embedding -> (bidirectional) recurrent layer -> probability."""

from __future__ import annotations

import keras
from keras import layers

RECURRENT_LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}


def _recurrent(cell: str, units: int, name: str, go_backwards: bool = False) -> layers.Layer:
    # Default activations and no recurrent dropout keep LSTM/GRU eligible for cuDNN on a GPU.
    return RECURRENT_LAYERS[cell](units, go_backwards=go_backwards, name=name)


def build_model(
    *,
    vocab_size: int,
    max_length: int,
    embedding_dim: int,
    cell: str,
    units: int,
    bidirectional: bool,
    merge_mode: str,
    backward_cell: str,
) -> keras.Model:
    """An uncompiled sentiment model over (batch, max_length) int token ids.

    merge_mode "none" keeps the two directions apart: each reads the review alone and gives
    its own probability through its own Dense head, and the model outputs their mean, so the
    two directions vote as two independent classifiers. merge_mode is unused when
    bidirectional is false.
    """
    token_ids = keras.Input(shape=(max_length,), dtype="int32", name="token_ids")
    embedded = layers.Embedding(vocab_size, embedding_dim, name="embedding")(token_ids)
    if not bidirectional:
        features = _recurrent(cell, units, name=cell)(embedded)
        probability = layers.Dense(1, activation="sigmoid", name="probability")(features)
        return keras.Model(token_ids, probability, name=f"{cell}_classifier")

    backward = None
    if backward_cell != "same":
        backward = _recurrent(
            backward_cell, units, name=f"backward_{backward_cell}", go_backwards=True
        )
    recurrent = layers.Bidirectional(
        _recurrent(cell, units, name=f"forward_{cell}"),
        merge_mode=None if merge_mode == "none" else merge_mode,
        backward_layer=backward,
        name="bidirectional",
    )(embedded)
    if merge_mode == "none":
        forward_features, backward_features = recurrent
        votes = [
            layers.Dense(1, activation="sigmoid", name="forward_vote")(forward_features),
            layers.Dense(1, activation="sigmoid", name="backward_vote")(backward_features),
        ]
        probability = layers.Average(name="probability")(votes)
    else:
        probability = layers.Dense(1, activation="sigmoid", name="probability")(recurrent)
    return keras.Model(token_ids, probability, name=f"bidirectional_{cell}_{merge_mode}")


def model_merge_mode(model: keras.Model) -> str | None:
    """The merge mode a built or loaded model uses ("none" for kept-apart directions)."""
    for layer in model.layers:
        if isinstance(layer, layers.Bidirectional):
            return layer.merge_mode or "none"
    return None
