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


def predicted_labels(probabilities: np.ndarray, decision_threshold: float) -> np.ndarray:
    """Each review's predicted label index: positive at or above the threshold with two labels
    (probabilities of the positive label, shape (n,)), the likeliest label with more (n, N)."""
    if probabilities.ndim == 1:
        return (probabilities >= decision_threshold).astype(int)
    return probabilities.argmax(axis=1)


def macro_roc_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """One-vs-rest ROC AUC averaged over the labels the split holds both sides of."""
    scores = [
        roc_auc_score(labels == label, probabilities[:, label])
        for label in range(probabilities.shape[1])
        if 0 < np.sum(labels == label) < len(labels)
    ]
    return float(np.mean(scores)) if scores else float("nan")


def score_predictions(
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    decision_threshold: float,
    label_names: list[str] | tuple[str, ...] = LABEL_NAMES,
) -> dict:
    """Accuracy, ROC AUC, log loss, the per-class report and the confusion matrix.

    With two labels, probabilities are the positive label's (n,) and ROC AUC is the positive
    label's; with more they are (n, N), ROC AUC is one-vs-rest averaged over the labels and the
    confusion matrix is N x N ({actual: {predicted: count}}).
    """
    names = list(label_names)
    classes = list(range(len(names)))
    predicted = predicted_labels(probabilities, decision_threshold)
    report = classification_report(
        labels,
        predicted,
        labels=classes,
        target_names=names,
        output_dict=True,
        zero_division=0,
    )
    per_class = {
        name: {key: _rounded(value) for key, value in report[name].items() if key != "support"}
        | {"support": int(report[name]["support"])}
        for name in (*names, "macro avg")
    }
    matrix = confusion_matrix(labels, predicted, labels=classes)
    if len(names) == 2:
        (true_negative, false_positive), (false_negative, true_positive) = matrix
        roc_auc = roc_auc_score(labels, probabilities)
        clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
        confusion = {
            "true_negative": int(true_negative),
            "false_positive": int(false_positive),
            "false_negative": int(false_negative),
            "true_positive": int(true_positive),
        }
    else:
        roc_auc = macro_roc_auc(labels, probabilities)
        clipped = np.clip(probabilities, 1e-7, 1.0)
        confusion = {
            actual: {predicted: int(count) for predicted, count in zip(names, row, strict=True)}
            for actual, row in zip(names, matrix, strict=True)
        }
    return {
        "accuracy": _rounded(accuracy_score(labels, predicted)),
        "roc_auc": _rounded(roc_auc),
        "log_loss": _rounded(log_loss(labels, clipped, labels=classes)),
        "report": {name.replace(" ", "_"): values for name, values in per_class.items()},
        "confusion_matrix": confusion,
        "reviews": len(labels),
    }


def _one_vs_rest(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is it the label, its probability) for every review and label: the micro-averaged pairs a
    single curve of N labels is drawn from; with two labels, the labels and probabilities."""
    if probabilities.ndim == 1:
        return labels, probabilities
    truth = labels[:, None] == np.arange(probabilities.shape[1])[None, :]
    return truth.ravel().astype(int), probabilities.ravel()


def _thin(rows: list[dict], max_points: int) -> list[dict]:
    """At most max_points rows, evenly spaced, first and last kept: a curve, not 25,000 points."""
    if len(rows) <= max_points:
        return rows
    keep = np.unique(np.linspace(0, len(rows) - 1, max_points).round().astype(int))
    return [rows[i] for i in keep]


def roc_points(labels: np.ndarray, probabilities: np.ndarray, max_points: int = 200) -> list[dict]:
    """The ROC curve as rows for DVC's templates: fpr, tpr, threshold (micro-averaged one-vs-rest
    with more than two labels)."""
    fpr, tpr, thresholds = roc_curve(*_one_vs_rest(labels, probabilities))
    rows = [
        {"fpr": round(float(f), 4), "tpr": round(float(t), 4), "threshold": round(float(h), 4)}
        for f, t, h in zip(fpr, tpr, np.minimum(thresholds, 1.0), strict=True)
    ]
    return _thin(rows, max_points)


def precision_recall_points(
    labels: np.ndarray, probabilities: np.ndarray, max_points: int = 200
) -> list[dict]:
    """The precision-recall curve of the positive class as rows: recall, precision, threshold
    (micro-averaged one-vs-rest with more than two labels)."""
    precision, recall, thresholds = precision_recall_curve(*_one_vs_rest(labels, probabilities))
    rows = [
        {
            "recall": round(float(r), 4),
            "precision": round(float(p), 4),
            "threshold": round(float(h), 4),
        }
        for r, p, h in zip(recall[:-1], precision[:-1], thresholds, strict=True)
    ]
    return _thin(rows, max_points)


def confusion_rows(
    labels: np.ndarray,
    predicted: np.ndarray,
    label_names: list[str] | tuple[str, ...] = LABEL_NAMES,
) -> str:
    """One CSV row per review (actual, predicted) for DVC's confusion template."""
    names = np.array([_csv_field(name) for name in label_names])
    lines = ["actual,predicted"]
    lines += [f"{a},{p}" for a, p in zip(names[labels], names[predicted], strict=True)]
    return "\n".join(lines) + "\n"


def _csv_field(name: str) -> str:
    return f'"{name.replace(chr(34), chr(34) * 2)}"' if any(c in name for c in ',"\n') else name


def confident_mistakes(
    texts: list[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    count: int,
    decision_threshold: float,
    label_names: list[str] | tuple[str, ...] = LABEL_NAMES,
    excerpt_chars: int = 300,
) -> list[dict]:
    """The wrongly classified reviews the model was surest of, surest first.

    With two labels each gives its true label and the positive label's probability; with more,
    its true and predicted labels and the predicted label's probability.
    """
    predicted = predicted_labels(probabilities, decision_threshold)
    wrong = np.flatnonzero(predicted != labels)
    if probabilities.ndim == 1:
        confidence = np.abs(probabilities[wrong] - 0.5)
    else:
        confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.lexsort((wrong, -confidence))][:count]  # ties: earlier review first

    def excerpt(i: int) -> str:
        return texts[i][:excerpt_chars] + ("…" if len(texts[i]) > excerpt_chars else "")

    if probabilities.ndim == 1:
        return [
            {
                "true_label": label_names[labels[i]],
                "probability_positive": round(float(probabilities[i]), 4),
                "excerpt": excerpt(i),
            }
            for i in order
        ]
    return [
        {
            "true_label": label_names[labels[i]],
            "predicted_label": label_names[predicted[i]],
            "probability": round(float(probabilities[i, predicted[i]]), 4),
            "excerpt": excerpt(i),
        }
        for i in order
    ]
