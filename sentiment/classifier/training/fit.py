"""Training: seeded, deterministic on CPU, and logged per epoch."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from sentiment.classifier.data.batching import batch_dataset, with_unlabelled
from sentiment.classifier.data.splits import Split
from sentiment.classifier.model.layers import EMBEDDING
from sentiment.classifier.model.network import (
    average_models,
    build_model,
    fold_for_inference,
    uses_adversarial_training,
)
from sentiment.classifier.model.private_apis import multi_worker_fit
from sentiment.classifier.training.adversarial import AdversarialTrainer, word_frequencies
from sentiment.classifier.training.best_epoch import BestEpoch, Outcome
from sentiment.classifier.training.distribution import strategy_scope
from sentiment.classifier.training.objectives import accuracy_metric, loss_for
from sentiment.classifier.training.pretrained import start_from_pretrained
from sentiment.console import log
from sentiment.errors import PipelineError
from sentiment.params import ModelConfig, TrainingConfig

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


class Trained(NamedTuple):
    """A fit's result: the model to save, its per-epoch history, and, with early stopping
    (patience above 0), how each fit ended (one Outcome per ensemble member; empty without)."""

    model: keras.Model
    history: dict[str, list[float]]
    stops: tuple[Outcome, ...] = ()


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
    unlabelled: Split | None = None,
    pretrained: dict[str, np.ndarray] | None = None,
) -> Trained:
    """Build, compile and fit the model; returns it with its per-epoch history.

    training_config.epochs is the number of epochs, or with training_config.patience above 0
    their ceiling: training then stops once the validation loss has not improved for that many
    epochs, and the model returned has the best epoch's weights (training/best_epoch.py).

    word_vectors, a (vocab_size, embedding_dim) table, starts the embedding when
    model_config.embedding_init is word2vec (and must then be given).

    training_config.distribute names the tf.distribute strategy (training/distribution.py);
    batch_size is the global batch, split over its replicas.

    training_config.ensemble > 1 trains that many members one after another, member i seeded
    with seed + i (the same word vectors for all), and returns the model that averages them;
    the history then runs through the members' epochs in turn, and each member stops on its own.

    unlabelled, token ids without labels, gives each step's virtual adversarial term
    training_config.unlabelled_ratio unlabelled texts per labelled review besides (and must then
    be given).

    pretrained, the pretrain stage's weights (training/pretrained.py), start the embedding
    and the recurrent layer (after word_vectors, which they then replace).
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
            unlabelled=unlabelled,
            pretrained=pretrained,
        )
    make_deterministic(training_config.seed)
    with strategy_scope(training_config.distribute):  # variables live where the strategy says
        model = _compiled_model(model_config, training_config)
        _start_embedding(model, model_config, word_vectors)
        if pretrained is not None:
            start_from_pretrained(model, model_config, pretrained)
    if uses_adversarial_training(model_config):
        model = _adversarial_trainer(model, model_config, training_config, train)
    # Cutting batches to their longest review is exact only when the model skips padding.
    by_length, batch_size = model_config.mask_padding, training_config.batch_size
    validation_batches = batch_dataset(
        validation, batch_size=batch_size, seed=None, by_length=by_length
    )
    best_epoch = None
    if training_config.patience:
        # First, so that the callbacks after it read the logs it has set (weight averaging).
        best_epoch = BestEpoch(
            patience=training_config.patience,
            ceiling=training_config.epochs,
            averaged_validation=validation_batches if training_config.weight_averaging else None,
        )
        callbacks = [best_epoch, *callbacks]
    fit_scope = contextlib.nullcontext()
    if training_config.distribute == "multi_worker":
        fit_scope = multi_worker_fit(model, next(iter(validation_batches)))
    batches = batch_dataset(
        train, batch_size=batch_size, seed=training_config.seed, by_length=by_length
    )
    if training_config.unlabelled_ratio:
        batches = _with_unlabelled(batches, unlabelled, training_config, by_length)
    with fit_scope:
        history = model.fit(
            batches,
            validation_data=validation_batches,
            epochs=training_config.epochs,
            shuffle=False,  # the dataset reshuffles itself, seeded, every epoch
            callbacks=list(callbacks),
            verbose=verbose,
        )
    if isinstance(model, AdversarialTrainer):
        model = fold_for_inference(model.classifier, model_config)
    stops = (best_epoch.outcome(),) if best_epoch is not None else ()
    return Trained(model, history.history, stops)


def _train_ensemble(
    *, train: Split, validation: Split, training_config: TrainingConfig, **arguments
) -> Trained:
    members, history, stops = [], {}, []
    count = training_config.ensemble
    for index in range(count):
        log(f"train: ensemble member {index + 1} of {count}, seed {training_config.seed + index}")
        member_config = dataclasses.replace(
            training_config, seed=training_config.seed + index, ensemble=1
        )
        member = train_model(
            train=train, validation=validation, training_config=member_config, **arguments
        )
        members.append(member.model)
        stops.extend(member.stops)
        for key, values in member.history.items():
            history.setdefault(key, []).extend(values)
    return Trained(average_models(members), history, tuple(stops))


def _with_unlabelled(
    batches: tf.data.Dataset,
    unlabelled: Split | None,
    training_config: TrainingConfig,
    by_length: bool,
) -> tf.data.Dataset:
    """The labelled batches, each with its unlabelled texts beside it (data/batching.py)."""
    size = max(1, round(training_config.batch_size * training_config.unlabelled_ratio))
    if unlabelled is None or len(unlabelled) < size:
        found = 0 if unlabelled is None else len(unlabelled)
        raise PipelineError(
            f"unlabelled_ratio {training_config.unlabelled_ratio:g} takes {size:,} unlabelled "
            f"texts a step and there are {found:,}: give more unlabelled text, or lower "
            "unlabelled_ratio or batch_size"
        )
    return with_unlabelled(
        batches, unlabelled, batch_size=size, seed=training_config.seed, by_length=by_length
    )


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
    trainer.compile(optimizer=_optimizer(training_config), loss=loss_for(model_config.classes))
    return trainer


def _compiled_model(model_config: ModelConfig, training_config: TrainingConfig) -> keras.Model:
    model = build_model(model_config)
    model.compile(
        optimizer=_optimizer(training_config),
        loss=loss_for(model_config.classes),
        metrics=[accuracy_metric(model_config.classes)],
    )
    return model


def _optimizer(training_config: TrainingConfig) -> keras.optimizers.Optimizer:
    # weight_averaging: the trained model gets an exponential moving average of its weights over
    # the training steps (this momentum per step), smoother than the last step's weights.
    momentum = training_config.weight_averaging
    averaging = {"use_ema": True, "ema_momentum": momentum} if momentum else {}
    optimizer = OPTIMIZERS[training_config.optimizer]
    return optimizer(learning_rate=training_config.learning_rate, **averaging)
