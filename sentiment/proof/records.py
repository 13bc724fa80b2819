"""The committed records the proof tooling reads: the metrics files, the platform, the noise.

Their paths are dvc.yaml's outputs (a test holds the two together); each is named here once.
"""

from __future__ import annotations

SHIPPED_METRICS = "metrics/shipped.json"  # which model ships, and its figures (evaluate's)
TEST_METRICS = "metrics/test.json"  # the network's test metrics (evaluate's)
BLEND_METRICS = "metrics/blend.json"  # the blend's weight and figures (evaluate's)
TRAIN_METRICS = "metrics/train/metrics.json"
BASELINE_METRICS = "metrics/baseline.json"
# Every metrics file of every stage that writes one (dvc.yaml's metrics: what `dvc exp show` and
# `dvc metrics diff` list).
METRICS_FILES = (SHIPPED_METRICS, TEST_METRICS, BLEND_METRICS, TRAIN_METRICS, BASELINE_METRICS)
# The data statistics (preprocess): committed like a metrics file, but an output, so the
# experiments table leads with what users compare; `sentiment compare` shows them when data
# changes, dvc.lock fingerprints them.
DATA_METRICS = "metrics/data.json"
# The machine and software that trained (the train stage writes it): not a metric, not a param.
PLATFORM_FILE = "metrics/platform.json"
# The run-to-run spread of the metrics for the committed configuration (`sentiment measure-noise`).
NOISE_FILE = "metrics/noise.json"

# The validation accuracy of the model the train stage saved, which configurations are compared
# and tuned on. Where the saved model is not the last epoch's weights as Keras validated them
# (early stopping keeps the best epoch, weight averaging and ensembles average), the stage scores
# it and writes this metric; where it is, the stage writes none and the last epoch's
# `eval.accuracy` is the saved model's (STANDS_IN_FOR).
SAVED_VALIDATION_ACCURACY = "saved_model.val_accuracy"
# A metric a run may lack -> the metric that then holds its value.
STANDS_IN_FOR = {SAVED_VALIDATION_ACCURACY: "eval.accuracy"}

# The metrics a pull request is judged on first, the shipped model's leading: (metrics file,
# metric) -> what it is.
HEADLINE_METRICS = {
    (SHIPPED_METRICS, "accuracy"): "shipped model: test accuracy",
    (SHIPPED_METRICS, "roc_auc"): "shipped model: test ROC AUC",
    (SHIPPED_METRICS, "log_loss"): "shipped model: test log loss",
    (TEST_METRICS, "accuracy"): "network: test accuracy",
    (TEST_METRICS, "roc_auc"): "network: test ROC AUC",
    (TEST_METRICS, "log_loss"): "network: test log loss",
    (TRAIN_METRICS, SAVED_VALIDATION_ACCURACY): "network: validation accuracy (saved model)",
}


def lookup(flat: dict, name: str):
    """A metric of one run's flattened metrics file, or what stands in for it; None if neither."""
    value = flat.get(name)
    if value is None and name in STANDS_IN_FOR:
        value = flat.get(STANDS_IN_FOR[name])
    return value


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """{'report.positive.recall': 0.89, ...}: nested metrics' numeric leaves, named as DVC does."""
    flat = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat
