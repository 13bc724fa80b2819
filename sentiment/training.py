"""Training: seeded, deterministic on CPU, and logged per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from sentiment.errors import PipelineError
from sentiment.model import build_model
from sentiment.splits import Split

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, force deterministic kernels: same params, same weights."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_model(
    *,
    train: Split,
    validation: Split,
    vocab_size: int,
    seed: int,
    embedding_dim: int,
    cell: str,
    units: int,
    bidirectional: bool,
    merge_mode: str,
    backward_cell: str,
    optimizer: str,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Build, compile and fit the model; returns it with its per-epoch history."""
    make_deterministic(seed)
    model = build_model(
        vocab_size=vocab_size,
        max_length=train.token_ids.shape[1],
        embedding_dim=embedding_dim,
        cell=cell,
        units=units,
        bidirectional=bidirectional,
        merge_mode=merge_mode,
        backward_cell=backward_cell,
    )
    model.compile(
        optimizer=OPTIMIZERS[optimizer](learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    history = model.fit(
        train.token_ids,
        train.labels,
        validation_data=(validation.token_ids, validation.labels),
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        callbacks=list(callbacks),
        verbose=verbose,
    )
    return model, history.history


def predict_probabilities(model: keras.Model, token_ids, batch_size: int = 1024):
    """Positive-class probabilities, shape (n,)."""
    return model.predict(token_ids, batch_size=batch_size, verbose=0)[:, 0]


def load_trained_model(path: Path) -> keras.Model:
    """Load the train stage's model in Keras safe mode (no arbitrary code from the file)."""
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `dvc repro train` first")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for foreign or damaged files
        raise PipelineError(
            f"{path} is not a model saved by the train stage ({error.__class__.__name__}): "
            "run `dvc repro train`"
        ) from None
