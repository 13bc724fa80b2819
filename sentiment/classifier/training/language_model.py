"""Language-model pretraining of the embedding and the recurrent layer on all the text the pipeline
may learn from (Dai & Le 2015), to start the classifier.

Before the classifier sees a label, its own embedding and recurrent layer (the same layers, built
by `build_model` from the same params) learn to predict each word of the training reviews and the
unlabelled texts from the words around it: the forward direction the next word from those before
it, the backward direction the previous word from those after it. The classifier then starts from
those weights; its head starts fresh.

The prediction is a softmax over the OUTPUT_WORDS most frequent ids (padding excepted: the
unknown word is one of them) and one class for every rarer word: the rare words are many and
each is seen too seldom to be worth a softmax row, and the full vocabulary's softmax would cost
several times the recurrent layer itself. Only positions whose word and neighbour are both words
count (never padding); the loss is the mean over them of each direction's cross-entropy, summed
over the directions. The validation reviews' text (never trained on) gives each epoch's held-out
loss. Seeded and deterministic on CPU like the classifier's training (training/fit.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from sentiment.classifier.data.batching import batch_dataset
from sentiment.classifier.data.splits import Split
from sentiment.classifier.model.layers import EMBEDDING, NormalisedEmbedding
from sentiment.classifier.model.network import build_model
from sentiment.classifier.training.adversarial import word_frequencies
from sentiment.classifier.training.fit import OPTIMIZERS, make_deterministic
from sentiment.classifier.training.pretrained import pretrained_arrays, recurrent_layer_name
from sentiment.errors import PipelineError
from sentiment.params import ModelConfig, TrainingConfig

# Ids below this are predicted by their own softmax row; the rarer ones share one more row.
OUTPUT_WORDS = 2000


class LanguageModel(keras.Model):
    """The classifier's embedding and recurrent layer, each direction with its own softmax over
    the next (forward) or previous (backward) word; fit it on batches of token ids alone."""

    def __init__(self, config: ModelConfig, output_words: int = OUTPUT_WORDS):
        super().__init__(name="language_model")
        # The classifier's own layers, every step's output kept and the two directions apart;
        # with adversarial training the embedding is normalised (model/layers.py) as it will be
        # in the classifier, so the recurrent layer learns on the inputs it will get there.
        base = build_model(
            dataclasses.replace(
                config, pooling="max", merge_mode="none", dropout=0.0, word_dropout=0.0
            )
        )
        self.embedding = base.get_layer(EMBEDDING)
        self.recurrent = base.get_layer(recurrent_layer_name(config))
        self.bidirectional = config.bidirectional
        self.classes = min(output_words, config.vocab_size) + 1  # the last: every rarer word
        self.state_dropout = keras.layers.Dropout(config.dropout, name="state_dropout")
        self.next_word = keras.layers.Dense(self.classes, name="next_word")
        self.previous_word = (
            keras.layers.Dense(self.classes, name="previous_word") if config.bidirectional else None
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def states(self, token_ids, training=False):
        """Each direction's output at every step: [(batch, steps, units)] forward first."""
        mask = self.embedding.compute_mask(token_ids)
        states = self.recurrent(self.embedding(token_ids), mask=mask, training=training)
        return list(states) if self.bidirectional else [states]

    def call(self, token_ids, training=False):
        return self.states(token_ids, training=training)

    def loss_of(self, token_ids, training=False):
        """The mean cross-entropy of each direction's predicted neighbours, summed."""
        token_ids = tf.convert_to_tensor(token_ids, dtype=tf.int32)
        classes = tf.minimum(token_ids, self.classes - 1)
        words = token_ids != 0
        states = self.states(token_ids, training=training)
        # Forward: the output at step t predicts the word at t + 1; backward: at t - 1.
        directions = [(states[0][:, :-1], classes[:, 1:], words[:, :-1] & words[:, 1:])]
        heads = [self.next_word]
        if self.bidirectional:
            directions.append((states[1][:, 1:], classes[:, :-1], words[:, 1:] & words[:, :-1]))
            heads.append(self.previous_word)
        total = 0.0
        for (outputs, targets, counted), head in zip(directions, heads, strict=True):
            chosen = self.state_dropout(tf.boolean_mask(outputs, counted), training=training)
            losses = keras.losses.sparse_categorical_crossentropy(
                tf.boolean_mask(targets, counted), head(chosen), from_logits=True
            )
            total += tf.reduce_sum(losses) / tf.maximum(tf.cast(tf.size(losses), tf.float32), 1.0)
        return total

    def train_step(self, token_ids):
        with tf.GradientTape() as tape:
            loss = self.loss_of(token_ids, training=True)
        trainable = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, trainable), trainable, strict=True))
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(token_ids)[0])
        return {"loss": self.loss_tracker.result()}

    def test_step(self, token_ids):
        loss = self.loss_of(token_ids, training=False)
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(token_ids)[0])
        return {"loss": self.loss_tracker.result()}


def pretrain(
    train: Split,
    unlabelled: Split,
    validation: Split,
    *,
    model_config: ModelConfig,
    training_config: TrainingConfig,
    epochs: int,
    word_vectors: np.ndarray | None = None,
    verbose: int | str = "auto",
) -> tuple[LanguageModel, dict[str, list[float]]]:
    """The language model fit for `epochs` passes over the training reviews and the unlabelled
    texts; its per-epoch history (loss, and val_loss on the validation reviews). word_vectors,
    when given, start its embedding; a normalised embedding weighs words by their frequency in
    the training reviews, as the classifier's does (training/adversarial.py)."""
    make_deterministic(training_config.seed)
    model = LanguageModel(model_config)
    if word_vectors is not None:
        model.embedding.embeddings.assign(word_vectors)
    if isinstance(model.embedding, NormalisedEmbedding):
        model.embedding.word_frequencies.assign(
            word_frequencies(train.token_ids, model_config.vocab_size)
        )
    model.compile(
        optimizer=OPTIMIZERS[training_config.optimizer](learning_rate=training_config.learning_rate)
    )
    by_length, size = model_config.mask_padding, training_config.batch_size
    batches = batch_dataset(
        all_text(train, unlabelled),
        batch_size=size,
        seed=training_config.seed,
        by_length=by_length,
        with_labels=False,
    )
    held_out = batch_dataset(
        validation, batch_size=size, seed=None, by_length=by_length, with_labels=False
    )
    history = model.fit(
        batches, validation_data=held_out, epochs=epochs, shuffle=False, verbose=verbose
    )
    return model, history.history


def all_text(*splits: Split) -> Split:
    """The splits' token ids as one Split (labels 0): the text pretraining learns from."""
    width = max(split.token_ids.shape[1] for split in splits)
    if any(split.token_ids.shape[1] != width for split in splits):
        raise PipelineError("the texts to pretrain on differ in width: run `dvc repro preprocess`")
    return Split(
        token_ids=np.concatenate([split.token_ids for split in splits]),
        labels=np.zeros(sum(len(split) for split in splits), dtype=np.int64),
        lengths=np.concatenate([split.lengths for split in splits]),
    )


def save_pretrained(model: LanguageModel, path: Path) -> None:
    """The weights the classifier starts from (training/pretrained.py), to `path` (.npz)."""
    arrays = pretrained_arrays(
        keras.ops.convert_to_numpy(model.embedding.embeddings), model.recurrent.get_weights()
    )
    with path.open("wb") as file:
        np.savez(file, **arrays)
