"""Early stopping on the validation reviews: `epochs` is a ceiling, the best epoch is kept.

With `patience` above 0 each epoch's weights are scored on the validation reviews. The callback
keeps the weights of the epoch with the lowest validation loss, ends training once `patience`
epochs in a row have not beaten it, and leaves the model with the kept weights: a small dataset
trains for as many epochs as it takes, a large one stops before it over-fits, and the model saved
is the best epoch's, not the last one's. (patience 0: the callback is not used, every epoch runs
and the last epoch's weights are saved.)

With weight_averaging the model that is saved is the optimizer's moving average of the weights,
not the weights as they stand: then each epoch's average is what is scored (its scores replace
the epoch's `val_` logs, so the curves show the model that would be saved) and the best average
is kept. Keras writes the average into the weights at the end of fit, before the callbacks'
`on_train_end`, where the kept average replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from sentiment.classifier.model.private_apis import averaged_values

# The validation score that decides the best epoch. The loss rather than the accuracy: on a
# validation split of a few hundred reviews the accuracy moves in steps of one review, so ties
# and single reviews decide; the loss moves with every review's probability, and it is what
# training minimises. A model whose loss has begun to climb is growing over-confident on the
# reviews it gets wrong, even where its accuracy has not yet fallen.
MONITOR = "val_loss"


@dataclass(frozen=True)
class Outcome:
    """How one fit ended: the epoch kept (from 1), the epochs run, the ceiling and patience."""

    best_epoch: int
    epochs_run: int
    ceiling: int
    patience: int
    best_logs: dict[str, float]  # the kept epoch's logs (its val_loss, val_accuracy, ...)

    @property
    def stopped_early(self) -> bool:
        return self.epochs_run < self.ceiling

    @property
    def still_improving(self) -> bool:
        """The last epoch run was the best and it was the ceiling: more epochs might help."""
        return self.best_epoch == self.epochs_run == self.ceiling

    def describe(self) -> str:
        """A few words for the train stage's line."""
        if self.stopped_early:
            return (
                f"stopped at epoch {self.epochs_run} of {self.ceiling}, "
                f"best epoch {self.best_epoch}"
            )
        if self.still_improving:
            return (
                f"ran all {self.ceiling} epochs, best epoch {self.best_epoch}: still improving "
                "at the ceiling (raise epochs)"
            )
        return f"ran all {self.ceiling} epochs, best epoch {self.best_epoch}"

    def as_metrics(self) -> dict[str, int]:
        """What metrics/train/metrics.json records of it."""
        return {"best_epoch": self.best_epoch, "epochs_run": self.epochs_run}


class BestEpoch(keras.callbacks.Callback):
    """Keeps the best epoch's weights and stops after `patience` epochs without a better one.

    averaged_validation: the validation batches, given when the optimizer averages the weights
    (use_ema): each epoch's average is then scored on them, its scores replace the epoch's `val_`
    logs (which the callbacks after this one, DVCLive's among them, and the history read), and
    the average is what is kept. Without it, fit's own validation of the epoch decides.
    Put it first among fit's callbacks.
    """

    def __init__(self, *, patience: int, ceiling: int, averaged_validation=None):
        super().__init__()
        if patience < 1:
            raise ValueError(f"patience must be 1 or more to stop early, not {patience}")
        self.patience = patience
        self.ceiling = ceiling
        self.averaged_validation = averaged_validation
        self.best_loss = np.inf
        self.best_epoch = 0
        self.epochs_run = 0
        self.best_logs: dict[str, float] = {}
        self._best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best_loss, self.best_epoch, self.epochs_run = np.inf, 0, 0
        self.best_logs, self._best_weights = {}, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if self.averaged_validation is not None:
            logs.update(self._score_the_average())
        if MONITOR not in logs:
            raise KeyError(f"the epoch's logs hold no {MONITOR}: fit needs validation data")
        self.epochs_run = epoch + 1
        loss = float(logs[MONITOR])
        # Strictly lower: on a tie the earlier epoch stays, so a plateau stops training.
        if self._best_weights is None or loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch + 1
            self.best_logs = {key: float(value) for key, value in logs.items()}
            self._best_weights = self._weights_to_keep()
        elif self.epochs_run - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        # Keras has written the optimizer's average into the weights by now (weight_averaging);
        # the kept epoch's weights (its average, then) replace them.
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)

    def outcome(self) -> Outcome:
        """How the fit ended (after it has)."""
        return Outcome(
            self.best_epoch, self.epochs_run, self.ceiling, self.patience, dict(self.best_logs)
        )

    def _weights_to_keep(self) -> list[np.ndarray]:
        weights = self.model.weights
        if self.averaged_validation is not None:
            weights = averaged_values(self.model.optimizer, weights)
        return [keras.ops.convert_to_numpy(weight) for weight in weights]

    def _score_the_average(self) -> dict[str, float]:
        """The validation scores of the optimizer's current average of the weights."""
        trainable = self.model.trainable_weights
        current = [tf.identity(weight) for weight in trainable]
        for weight, average in zip(
            trainable, averaged_values(self.model.optimizer, trainable), strict=True
        ):
            weight.assign(average)
        try:
            scores = self.model.evaluate(self.averaged_validation, verbose=0, return_dict=True)
        finally:
            for weight, value in zip(trainable, current, strict=True):
                weight.assign(value)
        return {f"val_{name}": float(value) for name, value in scores.items()}


def stopping_metrics(stops: Sequence[Outcome]) -> dict:
    """metrics/train/metrics.json's record of early stopping: the best epoch and the epochs run,
    one model's, or each ensemble member's under member_1, member_2, ..."""
    if len(stops) == 1:
        return stops[0].as_metrics()
    return {f"member_{n}": stop.as_metrics() for n, stop in enumerate(stops, 1)}
