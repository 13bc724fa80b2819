"""Adversarial and virtual adversarial training on normalised word embeddings (Miyato et al. 2017).

A training step adds to the usual loss the loss of each review moved, in embedding space, by a
small step of norm `adversarial` in the direction that hurts the model most (the loss gradient's
direction), and the divergence between the model's prediction for a review and for the review
moved by `virtual_adversarial` in the direction that changes that prediction most (found from a
random direction by one power-iteration step, which needs no label). Both make the model's
prediction smooth around every training review, which regularises far more than dropout alone.
The virtual adversarial term needs no label, so unlabelled texts can feed it too
(`unlabelled_ratio`): each step then adds the same term on a batch of unlabelled texts.

The embeddings are normalised (each dimension to mean 0, variance 1 over the vocabulary, words
weighted by their frequency in the training reviews): otherwise the model would simply grow its
embeddings until a perturbation of fixed norm is negligible.

The layers a step perturbs through live with the model's layers (model/layers.py); they exist
only while training: `model.network.fold_for_inference` returns the plain model of the same
config without them, its embedding table normalised once, so evaluation, export and serving see
an ordinary embedding -> recurrent layer -> head model.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from sentiment.classifier.model.layers import NORM_FLOOR, PERTURBATION
from sentiment.classifier.training.objectives import accuracy_metric, divergence_for

TINY = 1e-30  # a float32 far below any gradient yet still normal: 0 / TINY is 0
# The finite-difference step of the power iteration that finds the virtual adversarial direction
# (its norm in embedding space): small enough to stay in the linear regime around the review.
POWER_ITERATION_STEP = 0.1


def word_frequencies(token_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each id occurs in the (padded) training reviews; padding (id 0) counts 0."""
    counts = np.bincount(token_ids.ravel(), minlength=vocab_size)[:vocab_size].astype(np.float32)
    counts[0] = 0.0
    return counts


def unit_direction(values: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Each review's (batch, steps, dim) slice scaled to L2 norm 1 over its words (padding 0)."""
    if mask is not None:
        values = values * tf.cast(mask, values.dtype)[:, :, None]
    # Scaled by the largest entry first, so that tiny gradients do not underflow when squared.
    largest = tf.reduce_max(tf.abs(values), axis=(1, 2), keepdims=True)
    values = values / tf.maximum(largest, TINY)
    norm = tf.sqrt(NORM_FLOOR + tf.reduce_sum(tf.square(values), axis=(1, 2), keepdims=True))
    return values / norm


class AdversarialTrainer(keras.Model):
    """Trains `classifier` (built with its NormalisedEmbedding and EmbeddingPerturbation) with
    the adversarial terms added to its loss; predicts and evaluates as the classifier does.

    Compile it with the classifier's loss and no metrics: it reports the loss and accuracy
    itself, the loss being the classifier's own (clean) loss, comparable with plain training.
    """

    def __init__(self, classifier: keras.Model, *, adversarial: float, virtual_adversarial: float):
        super().__init__(name=f"{classifier.name}_adversarial_training")
        self.classifier = classifier
        self.adversarial = adversarial
        self.virtual_adversarial = virtual_adversarial
        self.perturbation_layer = classifier.get_layer(PERTURBATION)
        self.noise_seeds = keras.random.SeedGenerator()  # seeded by keras' global seed
        self.loss_tracker = keras.metrics.Mean(name="loss")
        classes = classifier.output_shape[-1]
        classes = 2 if classes == 1 else classes
        self.accuracy = accuracy_metric(classes)
        self.divergence = divergence_for(classes)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy]

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def _perturbed(self, token_ids, perturbation):
        self.perturbation_layer.perturbation = perturbation
        try:
            return self.classifier(token_ids, training=True)
        finally:
            self.perturbation_layer.perturbation = None

    def _report(self, token_ids, labels, predicted, loss):
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(token_ids)[0])
        self.accuracy.update_state(labels, predicted)
        return {metric.name: metric.result() for metric in self.metrics}

    def loss_terms(self, inputs, labels) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """The step's loss terms, and the clean predictions. inputs: a batch's token ids, or
        (token ids, unlabelled token ids): unlabelled texts, with no labels, add the virtual
        adversarial term on them (`unlabelled`) and change no other term."""
        token_ids, unlabelled_ids = inputs if isinstance(inputs, tuple) else (inputs, None)
        with tf.GradientTape() as embedding_tape:
            predicted = self.classifier(token_ids, training=True)
            embedded, mask = self.perturbation_layer.seen
            terms = {"clean": self.compute_loss(x=token_ids, y=labels, y_pred=predicted)}
        if self.adversarial:
            gradient = tf.stop_gradient(embedding_tape.gradient(terms["clean"], embedded))
            moved = self._perturbed(token_ids, self.adversarial * unit_direction(gradient, mask))
            terms["adversarial"] = self.compute_loss(x=token_ids, y=labels, y_pred=moved)
        if self.virtual_adversarial:
            terms["virtual"] = self._virtual_adversarial_loss(token_ids, predicted, embedded, mask)
            if unlabelled_ids is not None:
                reference = self.classifier(unlabelled_ids, training=True)
                seen, seen_mask = self.perturbation_layer.seen
                terms["unlabelled"] = self._virtual_adversarial_loss(
                    unlabelled_ids, reference, seen, seen_mask
                )
        return terms, predicted

    def train_step(self, data):
        inputs, labels = data[0], data[1]
        with tf.GradientTape() as weights_tape:
            terms, predicted = self.loss_terms(inputs, labels)
            total = terms["clean"]
            for name in ("adversarial", "virtual", "unlabelled"):  # in this order: same bits
                if name in terms:
                    total += terms[name]
        trainable = self.trainable_weights
        self.optimizer.apply_gradients(
            zip(weights_tape.gradient(total, trainable), trainable, strict=True)
        )
        token_ids = inputs[0] if isinstance(inputs, tuple) else inputs
        return self._report(token_ids, labels, predicted, terms["clean"])

    def test_step(self, data):
        token_ids, labels = data[0], data[1]
        predicted = self.classifier(token_ids, training=False)
        loss = self.compute_loss(x=token_ids, y=labels, y_pred=predicted, training=False)
        return self._report(token_ids, labels, predicted, loss)

    def _virtual_adversarial_loss(self, token_ids, predicted, embedded, mask):
        reference = tf.stop_gradient(predicted)
        start = POWER_ITERATION_STEP * unit_direction(
            keras.random.normal(tf.shape(embedded), seed=self.noise_seeds), mask
        )
        with tf.GradientTape() as direction_tape:
            direction_tape.watch(start)
            divergence = self.divergence(reference, self._perturbed(token_ids, start))
        direction = tf.stop_gradient(direction_tape.gradient(divergence, start))
        moved = self._perturbed(
            token_ids, self.virtual_adversarial * unit_direction(direction, mask)
        )
        return self.divergence(reference, moved)
