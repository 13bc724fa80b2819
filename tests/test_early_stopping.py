"""Early stopping: `epochs` a ceiling, the best epoch's weights kept (training/best_epoch.py)."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from sentiment.classifier.data.splits import Split
from sentiment.classifier.model.inference import validation_accuracy
from sentiment.classifier.training.best_epoch import BestEpoch, Outcome, stopping_metrics
from sentiment.classifier.training.fit import _compiled_model, make_deterministic, train_model
from sentiment.classifier.training.summary import SUMMARY_PATTERN, training_summary
from tests.conftest import dvc, make_project, small_configs


class PlantedLoss(keras.callbacks.Callback):
    """Replaces each epoch's val_loss with a planted curve (put it before BestEpoch)."""

    def __init__(self, curve):
        super().__init__()
        self.curve = curve

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.curve[epoch]


class Snapshots(keras.callbacks.Callback):
    """Every epoch's weights as they stood at its end, and its logs."""

    def __init__(self):
        super().__init__()
        self.weights, self.logs = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())
        self.logs.append(dict(logs))


def tiny(small_data, **overrides):
    splits, vocabulary = small_data
    configs = small_configs(
        len(vocabulary) + 2, embedding_dim=4, units=4, batch_size=64, **overrides
    )
    return splits, configs


def planted_fit(small_data, curve, *, patience, epochs):
    """A real model fit on the small data under a planted validation-loss curve."""
    splits, (model_config, training_config) = tiny(small_data, epochs=epochs)
    make_deterministic(3)
    model = _compiled_model(model_config, training_config)
    best, snapshots = BestEpoch(patience=patience, ceiling=epochs), Snapshots()
    history = model.fit(
        splits["train"].token_ids,
        splits["train"].labels,
        validation_data=(splits["validation"].token_ids, splits["validation"].labels),
        batch_size=64,
        epochs=epochs,
        callbacks=[PlantedLoss(curve), best, snapshots],
        verbose=0,
    )
    return model, best.outcome(), snapshots, history.history


def test_a_better_then_worse_curve_stops_after_patience_and_keeps_the_best_epoch(small_data):
    curve = [0.60, 0.50, 0.40, 0.45, 0.41, 0.30, 0.20]  # best at 3, then 2 epochs worse
    model, outcome, snapshots, history = planted_fit(small_data, curve, patience=2, epochs=7)
    assert (outcome.best_epoch, outcome.epochs_run) == (3, 5)
    assert outcome.stopped_early and not outcome.still_improving
    assert len(history["val_loss"]) == 5  # stopped: epochs 6 and 7 never ran
    for kept, best in zip(model.get_weights(), snapshots.weights[2], strict=True):
        assert np.array_equal(kept, best)
    assert not np.array_equal(model.get_weights()[0], snapshots.weights[4][0])
    splits, _ = small_data
    # The model left behind is the best epoch's: its validation accuracy is that epoch's log.
    assert validation_accuracy(model, splits["validation"]) == pytest.approx(
        snapshots.logs[2]["val_accuracy"], abs=1e-6
    )
    assert outcome.best_logs["val_loss"] == 0.40
    assert "stopped at epoch 5 of 7, best epoch 3" in outcome.describe()


def test_a_tie_is_no_improvement(small_data):
    _, outcome, _, _ = planted_fit(small_data, [0.5, 0.5, 0.5, 0.4], patience=2, epochs=4)
    assert (outcome.best_epoch, outcome.epochs_run) == (1, 3)


def test_a_curve_still_falling_at_the_ceiling_says_so(small_data):
    _, outcome, _, _ = planted_fit(small_data, [0.5, 0.4, 0.3], patience=2, epochs=3)
    assert (outcome.best_epoch, outcome.epochs_run) == (3, 3)
    assert outcome.still_improving and not outcome.stopped_early
    assert "still improving at the ceiling (raise epochs)" in outcome.describe()


def test_ceiling_one_runs_one_epoch_and_keeps_it(small_data):
    _, outcome, snapshots, _ = planted_fit(small_data, [0.5], patience=3, epochs=1)
    assert (outcome.best_epoch, outcome.epochs_run) == (1, 1) and outcome.still_improving
    assert len(snapshots.weights) == 1


def test_a_patience_below_one_is_not_early_stopping():
    with pytest.raises(ValueError, match="patience must be 1 or more"):
        BestEpoch(patience=0, ceiling=5)


def test_patience_zero_runs_every_epoch_and_keeps_the_last(small_data):
    splits, _ = small_data
    model, history, stops = fit(splits, epochs=3, patience=0)
    assert stops == () and len(history["val_loss"]) == 3
    assert validation_accuracy(model, splits["validation"]) == pytest.approx(
        history["val_accuracy"][-1], abs=1e-6
    )


def over_fitting_data(small_data) -> dict[str, Split]:
    """The small data with its validation labels half flipped: as the model learns the training
    reviews its validation loss soon rises, so early stopping has something to stop."""
    splits, _ = small_data
    validation = splits["validation"]
    labels = validation.labels.copy()
    labels[::2] = 1 - labels[::2]
    return splits | {"validation": dataclasses.replace(validation, labels=labels)}


def vocab_size(splits) -> int:
    return int(max(split.token_ids.max() for split in splits.values())) + 1


def fit(splits, classes: int | None = None, **overrides):
    """train_model on the splits, with SMALL_PARAMS, a smaller network and these overrides."""
    model_config, training_config = small_configs(
        vocab_size(splits), **({"embedding_dim": 8, "units": 8} | overrides)
    )
    if classes is not None:
        model_config = dataclasses.replace(model_config, classes=classes)
    return train_model(
        train=splits["train"],
        validation=splits["validation"],
        model_config=model_config,
        training_config=training_config,
        verbose=0,
    )


@pytest.mark.parametrize("weight_averaging", [0.0, 0.9])
def test_training_saves_the_best_epochs_model(small_data, weight_averaging):
    splits = over_fitting_data(small_data)
    model, history, stops = fit(
        splits, epochs=8, patience=2, weight_averaging=weight_averaging, learning_rate=0.02
    )
    (stop,) = stops
    assert len(history["val_loss"]) == stop.epochs_run
    assert stop.best_epoch == 1 + int(np.argmin(history["val_loss"]))
    assert stop.epochs_run == min(stop.best_epoch + 2, 8)
    assert stop.epochs_run < 8, history["val_loss"]  # the planted over-fitting stopped it
    # The saved model is the best epoch's (with weight averaging: its average, which is what
    # the epoch's logs then score), not the last epoch's and not the average at the end.
    assert validation_accuracy(model, splits["validation"]) == pytest.approx(
        history["val_accuracy"][stop.best_epoch - 1], abs=1e-6
    )


def test_each_ensemble_member_stops_on_its_own(small_data):
    splits = over_fitting_data(small_data)
    _, history, stops = fit(splits, epochs=6, patience=1, ensemble=2, learning_rate=0.02)
    assert len(stops) == 2
    assert len(history["val_loss"]) == sum(stop.epochs_run for stop in stops)
    first = history["val_loss"][: stops[0].epochs_run]
    assert stops[0].best_epoch == 1 + int(np.argmin(first))
    assert stopping_metrics(stops) == {
        "member_1": stops[0].as_metrics(),
        "member_2": stops[1].as_metrics(),
    }


def test_several_labels_stop_and_keep_the_best_epoch(small_data):
    splits, _ = small_data
    # Three labels: the review's label, and a third that the validation reviews alone carry.
    validation = splits["validation"]
    labels = validation.labels.astype(np.int64).copy()
    labels[::3] = 2
    splits = splits | {"validation": dataclasses.replace(validation, labels=labels)}
    model, history, (stop,) = fit(splits, classes=3, epochs=6, patience=1)
    assert model.output_shape[-1] == 3
    assert stop.best_epoch == 1 + int(np.argmin(history["val_loss"]))
    assert validation_accuracy(model, splits["validation"]) == pytest.approx(
        history["val_accuracy"][stop.best_epoch - 1], abs=1e-6
    )


def test_the_stage_line_says_where_training_stopped_and_keeps_its_pattern():
    stop = Outcome(best_epoch=4, epochs_run=7, ceiling=30, patience=3, best_logs={})
    line = training_summary(140_000, 20.0, 0.9, (stop,))
    assert SUMMARY_PATTERN.match(line)
    assert line.endswith("val_accuracy 0.9000; stopped at epoch 7 of 30, best epoch 4")
    assert training_summary(100, 1.0, 0.5) == "train: 100 reviews in 1.0 s (100 reviews/s), " + (
        "val_accuracy 0.5000"
    )


@pytest.mark.slow
def test_the_train_stage_records_the_best_epoch_only_with_early_stopping(tmp_path):
    repo, run = make_project(tmp_path / "project", epochs=4, patience=1)
    output = dvc(run, "repro", "train")
    live = json.loads((repo / "metrics/train/metrics.json").read_text())
    stopping = live["early_stopping"]
    assert 1 <= stopping["best_epoch"] <= stopping["epochs_run"] <= 4
    assert f"best epoch {stopping['best_epoch']}" in output
    rows = (repo / "metrics/train/plots/metrics/eval/loss.tsv").read_text().splitlines()[1:]
    assert len(rows) == stopping["epochs_run"]  # the curves keep every epoch run
    losses = [float(row.split("\t")[-1]) for row in rows]
    assert stopping["best_epoch"] == 1 + int(np.argmin(losses))
    assert 0.5 < live["saved_model"]["val_accuracy"] <= 1.0

    dvc(run, "exp", "run", "-S", "patience=0")
    live = json.loads((repo / "metrics/train/metrics.json").read_text())
    assert "early_stopping" not in live and "saved_model" not in live
