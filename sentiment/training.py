"""Training: seeded, deterministic on CPU, and logged per epoch."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from sentiment.adversarial import (
    EMBEDDING,
    AdversarialTrainer,
    fold_for_inference,
    uses_adversarial_training,
    word_frequencies,
)
from sentiment.batching import batch_dataset, cut_padding, length_batches
from sentiment.cli import log
from sentiment.distribution import strategy_scope
from sentiment.errors import PipelineError
from sentiment.internals import multi_worker_fit
from sentiment.model import average_models, build_model, nested_layers
from sentiment.params import ModelConfig, TrainingConfig
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
    model_config: ModelConfig,
    training_config: TrainingConfig,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    word_vectors: np.ndarray | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Build, compile and fit the model; returns it with its per-epoch history.

    word_vectors, a (vocab_size, embedding_dim) table, starts the embedding when
    model_config.embedding_init is word2vec (and must then be given).

    training_config.distribute names the tf.distribute strategy (sentiment/distribution.py);
    batch_size is the global batch, split over its replicas.

    training_config.ensemble > 1 trains that many members one after another, member i seeded
    with seed + i (the same word vectors for all), and returns the model that averages them;
    the history then runs through the members' epochs in turn.
    """
    if training_config.ensemble > 1:
        return _train_ensemble(
            train=train,
            validation=validation,
            model_config=model_config,
            training_config=training_config,
            callbacks=callbacks,
            verbose=verbose,
            word_vectors=word_vectors,
        )
    make_deterministic(training_config.seed)
    with strategy_scope(training_config.distribute):  # variables live where the strategy says
        model = _compiled_model(model_config, training_config)
        _start_embedding(model, model_config, word_vectors)
    if uses_adversarial_training(model_config):
        model = _adversarial_trainer(model, model_config, training_config, train)
    # Cutting batches to their longest review is exact only when the model skips padding.
    by_length, batch_size = model_config.mask_padding, training_config.batch_size
    validation_batches = batch_dataset(
        validation, batch_size=batch_size, seed=None, by_length=by_length
    )
    fit_scope = contextlib.nullcontext()
    if training_config.distribute == "multi_worker":
        fit_scope = multi_worker_fit(model, next(iter(validation_batches)))
    with fit_scope:
        history = model.fit(
            batch_dataset(
                train, batch_size=batch_size, seed=training_config.seed, by_length=by_length
            ),
            validation_data=validation_batches,
            epochs=training_config.epochs,
            shuffle=False,  # the dataset reshuffles itself, seeded, every epoch
            callbacks=list(callbacks),
            verbose=verbose,
        )
    if isinstance(model, AdversarialTrainer):
        model = fold_for_inference(model.classifier, model_config)
    return model, history.history


def _train_ensemble(
    *, train: Split, validation: Split, training_config: TrainingConfig, **arguments
) -> tuple[keras.Model, dict[str, list[float]]]:
    members, history = [], {}
    count = training_config.ensemble
    for index in range(count):
        log(f"train: ensemble member {index + 1} of {count}, seed {training_config.seed + index}")
        member_config = dataclasses.replace(
            training_config, seed=training_config.seed + index, ensemble=1
        )
        member, member_history = train_model(
            train=train, validation=validation, training_config=member_config, **arguments
        )
        members.append(member)
        for key, values in member_history.items():
            history.setdefault(key, []).extend(values)
    return average_models(members), history


def validation_accuracy(model: keras.Model, validation: Split) -> float:
    """The model's accuracy on the validation reviews at the 0.5 threshold, as Keras counts it."""
    predicted = predict_probabilities(model, validation.token_ids) >= 0.5
    return float(np.mean(predicted == validation.labels))


def _start_embedding(
    model: keras.Model, model_config: ModelConfig, word_vectors: np.ndarray | None
) -> None:
    if model_config.embedding_init != "word2vec":
        return
    if word_vectors is None:
        raise PipelineError("embedding_init word2vec needs the word_vectors stage's vectors")
    model.get_layer(EMBEDDING).embeddings.assign(word_vectors)


def _adversarial_trainer(
    classifier: keras.Model,
    model_config: ModelConfig,
    training_config: TrainingConfig,
    train: Split,
) -> AdversarialTrainer:
    """The classifier wrapped for adversarial training, its embedding's word frequencies set."""
    frequencies = word_frequencies(train.token_ids, model_config.vocab_size)
    classifier.get_layer(EMBEDDING).word_frequencies.assign(frequencies)
    trainer = AdversarialTrainer(
        classifier,
        adversarial=model_config.adversarial,
        virtual_adversarial=model_config.virtual_adversarial,
    )
    trainer.compile(optimizer=_optimizer(training_config), loss=keras.losses.BinaryCrossentropy())
    return trainer


def _compiled_model(model_config: ModelConfig, training_config: TrainingConfig) -> keras.Model:
    model = build_model(model_config)
    model.compile(
        optimizer=_optimizer(training_config),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def _optimizer(training_config: TrainingConfig) -> keras.optimizers.Optimizer:
    # weight_averaging: the trained model gets an exponential moving average of its weights over
    # the training steps (this momentum per step), smoother than the last step's weights.
    momentum = training_config.weight_averaging
    averaging = {"use_ema": True, "ema_momentum": momentum} if momentum else {}
    optimizer = OPTIMIZERS[training_config.optimizer]
    return optimizer(learning_rate=training_config.learning_rate, **averaging)


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
    return any(getattr(layer, "mask_zero", False) for layer in nested_layers(model))


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
