"""The pretrain stage's weights (training/language_model.py): saved, loaded, and set as the start
of the classifier's embedding and recurrent layer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentiment.errors import PipelineError
from sentiment.params import ModelConfig

if TYPE_CHECKING:  # TensorFlow loads only where a model is started, not to name the files
    import keras

WEIGHTS_FILE = "weights.npz"
# What the stage writes instead when pretrain_epochs is 0 (DVC outputs must exist).
NOT_TRAINED_FILE = "NOT_TRAINED.txt"
BIDIRECTIONAL = "bidirectional"


def recurrent_layer_name(config: ModelConfig) -> str:
    """The name of the classifier's recurrent layer (model/network.py): what pretraining starts."""
    return BIDIRECTIONAL if config.bidirectional else config.cell


def pretrained_arrays(embedding: np.ndarray, recurrent: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of the weights file: the embedding table and the recurrent layer's weights."""
    arrays = {"embedding": embedding}
    for index, weight in enumerate(recurrent):
        arrays[f"recurrent_{index}"] = weight
    return arrays


def load_pretrained(path: Path) -> dict[str, np.ndarray]:
    """The pretrain stage's weights (see save_pretrained)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing: run `dvc repro pretrain`") from None
    except (ValueError, OSError) as error:
        raise PipelineError(
            f"{path} is not the pretrain stage's weights ({error}): run `dvc repro pretrain`"
        ) from None


def start_from_pretrained(
    classifier: keras.Model, config: ModelConfig, pretrained: dict[str, np.ndarray]
) -> None:
    """Set the classifier's embedding and recurrent layer to the pretrained weights."""
    from sentiment.classifier.model.layers import EMBEDDING

    embedding = classifier.get_layer(EMBEDDING)
    recurrent = classifier.get_layer(recurrent_layer_name(config))
    expected = [tuple(embedding.embeddings.shape)] + [tuple(w.shape) for w in recurrent.weights]
    weights = [pretrained.get("embedding")] + [
        pretrained.get(f"recurrent_{index}") for index in range(len(recurrent.weights))
    ]
    found = [None if weight is None else weight.shape for weight in weights]
    if found != expected or len(pretrained) != len(expected):
        raise PipelineError(
            "the pretrained weights do not fit the model (pretrained for another embedding_dim, "
            "cell, units or vocabulary): run `dvc repro pretrain`"
        )
    embedding.embeddings.assign(weights[0])
    recurrent.set_weights(weights[1:])
