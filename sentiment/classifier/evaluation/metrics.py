"""Test-set metrics and plot data: what `dvc metrics diff` and `dvc plots` show of a change."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from sentiment.classifier.data.reviews import LABEL_NAMES

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


def _thin(rows: list[dict], max_points: int) -> list[dict]:
    """At most max_points rows, evenly spaced, first and last kept: a curve, not 25,000 points."""
    if len(rows) <= max_points:
        return rows
    keep = np.unique(np.linspace(0, len(rows) - 1, max_points).round().astype(int))
    return [rows[i] for i in keep]


def roc_points(labels: np.ndarray, probabilities: np.ndarray, max_points: int = 200) -> list[dict]:
    """The ROC curve as rows for DVC's templates: fpr, tpr, threshold."""
    fpr, tpr, thresholds = roc_curve(labels, probabilities)
    rows = [
        {"fpr": round(float(f), 4), "tpr": round(float(t), 4), "threshold": round(float(h), 4)}
        for f, t, h in zip(fpr, tpr, np.minimum(thresholds, 1.0), strict=True)
    ]
    return _thin(rows, max_points)


def precision_recall_points(
    labels: np.ndarray, probabilities: np.ndarray, max_points: int = 200
) -> list[dict]:
    """The precision-recall curve of the positive class as rows: recall, precision, threshold."""
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    rows = [
        {
            "recall": round(float(r), 4),
            "precision": round(float(p), 4),
            "threshold": round(float(h), 4),
        }
        for r, p, h in zip(recall[:-1], precision[:-1], thresholds, strict=True)
    ]
    return _thin(rows, max_points)


def confusion_rows(labels: np.ndarray, predicted: np.ndarray) -> str:
    """One CSV row per review (actual, predicted) for DVC's confusion template."""
    names = np.array(LABEL_NAMES)
    lines = ["actual,predicted"]
    lines += [f"{a},{p}" for a, p in zip(names[labels], names[predicted], strict=True)]
    return "\n".join(lines) + "\n"


def confident_mistakes(
    texts: list[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    count: int,
    decision_threshold: float,
    excerpt_chars: int = 300,
) -> list[dict]:
    """The wrongly classified reviews the model was surest of, surest first."""
    predicted = (probabilities >= decision_threshold).astype(int)
    wrong = np.flatnonzero(predicted != labels)
    confidence = np.abs(probabilities[wrong] - 0.5)
    order = wrong[np.lexsort((wrong, -confidence))][:count]  # ties: earlier review first
    return [
        {
            "true_label": LABEL_NAMES[labels[i]],
            "probability_positive": round(float(probabilities[i]), 4),
            "excerpt": texts[i][:excerpt_chars] + ("…" if len(texts[i]) > excerpt_chars else ""),
        }
        for i in order
    ]
