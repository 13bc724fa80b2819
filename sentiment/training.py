"""Training: seeded, deterministic on CPU, and logged per epoch."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from sentiment.batching import batch_dataset, cut_padding, length_batches
from sentiment.distribution import strategy_scope
from sentiment.errors import PipelineError
from sentiment.model import build_model
from sentiment.splits import Split

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def run_ops_single_threaded() -> None:
    """Give each TensorFlow op one thread; call before TensorFlow runs anything.

    The model's cost is two recurrent loops (one per direction) of tiny matrix products; the two
    run side by side on the inter-op threads, and splitting each tiny product across cores only
    adds synchronisation (measured: about 12% more reviews/s on 2 cores). Has no effect once
    TensorFlow has started, e.g. in a test session.
    """
    with contextlib.suppress(RuntimeError):  # TensorFlow already started: keep its settings
        tf.config.threading.set_intra_op_parallelism_threads(1)


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
    mask_padding: bool,
    pooling: str,
    dropout: float,
    word_dropout: float,
    optimizer: str,
    learning_rate: float,
    weight_averaging: float,
    batch_size: int,
    epochs: int,
    distribute: str = "none",
    padding: str = "pre",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    stock_layers: bool = False,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Build, compile and fit the model; returns it with its per-epoch history.

    stock_layers trains with Keras' own LSTM and Embedding (for the benchmark's comparisons).
    distribute names the tf.distribute strategy (sentiment/distribution.py); batch_size is the
    global batch, split over its replicas. padding is the data's padding side (see build_model).
    """
    make_deterministic(seed)
    with strategy_scope(distribute):  # the model's variables live where the strategy puts them
        model = _compiled_model(
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            cell=cell,
            units=units,
            bidirectional=bidirectional,
            merge_mode=merge_mode,
            backward_cell=backward_cell,
            mask_padding=mask_padding,
            pooling=pooling,
            dropout=dropout,
            word_dropout=word_dropout,
            stock_layers=stock_layers,
            padding=padding,
            optimizer=optimizer,
            learning_rate=learning_rate,
            weight_averaging=weight_averaging,
        )
    # Cutting batches to their longest review is exact only when the model skips padding.
    validation_batches = batch_dataset(
        validation, batch_size=batch_size, seed=None, by_length=mask_padding
    )
    if distribute == "multi_worker":
        prepare_multi_worker_fit(model, next(iter(validation_batches)))
    history = model.fit(
        batch_dataset(train, batch_size=batch_size, seed=seed, by_length=mask_padding),
        validation_data=validation_batches,
        epochs=epochs,
        shuffle=False,  # the dataset reshuffles itself, seeded, every epoch
        callbacks=list(callbacks),
        verbose=verbose,
    )
    return model, history.history


def prepare_multi_worker_fit(model: keras.Model, sample_batch) -> None:
    """Work around Keras 3's fit under MultiWorkerMirroredStrategy (keras-team/keras#20585).

    fit builds the model's, loss's and metrics' state from the first distributed batch, which it
    reduces across workers eagerly, and it averages each step's logs across workers over an axis
    that scalars lack; both stop it. The build needs only a batch's shapes and dtypes, so it is
    done here from a local batch, and the logs are averaged over the workers alone. The
    two-worker test in tests/test_distribution.py trains through both.
    """
    from keras.src.backend.tensorflow import trainer

    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=sample_batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    keras_reduce = getattr(trainer.reduce_per_replica, "keras_reduce", trainer.reduce_per_replica)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values
            )
        return keras_reduce(values, strategy, reduction)

    reduce_per_replica.keras_reduce = keras_reduce
    trainer.reduce_per_replica = reduce_per_replica


def _compiled_model(
    *, optimizer: str, learning_rate: float, weight_averaging: float, **architecture
) -> keras.Model:
    model = build_model(**architecture)
    # weight_averaging: the trained model gets an exponential moving average of its weights over
    # the training steps (this momentum per step), smoother than the last step's weights.
    averaging = {"use_ema": True, "ema_momentum": weight_averaging} if weight_averaging else {}
    model.compile(
        optimizer=OPTIMIZERS[optimizer](learning_rate=learning_rate, **averaging),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def predict_probabilities(
    model: keras.Model, token_ids: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Positive-class probabilities of padded reviews (n, steps), in their order, shape (n,).

    A model that masks padding is fed reviews of similar length together, cut to the longest.
    """
    by_length = model_masks_padding(model)
    words = np.count_nonzero(token_ids, axis=1)
    probabilities = np.empty(len(token_ids), dtype=np.float32)
    for rows in length_batches(words, batch_size, None, by_length=by_length):
        batch = cut_padding(token_ids[rows]) if by_length else token_ids[rows]
        probabilities[rows] = keras.ops.convert_to_numpy(model.predict_on_batch(batch))[:, 0]
    return probabilities


def model_masks_padding(model: keras.Model) -> bool:
    """Whether the model's embedding masks padding (then padding columns can be cut)."""
    return any(getattr(layer, "mask_zero", False) for layer in model.layers)


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
