"""Test-set metrics: what `dvc metrics diff` shows a reviewer."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    log_loss,
    roc_auc_score,
)

from sentiment.data import LABEL_NAMES

_DIGITS = 6  # rounded so the committed JSON is stable text, not float noise


def _rounded(value: float) -> float:
    return round(float(value), _DIGITS)


def score_predictions(
    labels: np.ndarray, probabilities: np.ndarray, *, decision_threshold: float
) -> dict:
    """Accuracy, ROC AUC, log loss, the per-class report and the confusion matrix."""
    predicted = (probabilities >= decision_threshold).astype(int)
    report = classification_report(
        labels,
        predicted,
        labels=[0, 1],
        target_names=list(LABEL_NAMES),
        output_dict=True,
        zero_division=0,
    )
    per_class = {
        name: {key: _rounded(value) for key, value in report[name].items() if key != "support"}
        | {"support": int(report[name]["support"])}
        for name in (*LABEL_NAMES, "macro avg")
    }
    (true_negative, false_positive), (false_negative, true_positive) = confusion_matrix(
        labels, predicted, labels=[0, 1]
    )
    return {
        "accuracy": _rounded(accuracy_score(labels, predicted)),
        "roc_auc": _rounded(roc_auc_score(labels, probabilities)),
        "log_loss": _rounded(
            log_loss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7), labels=[0, 1])
        ),
        "report": {name.replace(" ", "_"): values for name, values in per_class.items()},
        "confusion_matrix": {
            "true_negative": int(true_negative),
            "false_positive": int(false_positive),
            "false_negative": int(false_negative),
            "true_positive": int(true_positive),
        },
        "reviews": len(labels),
    }
