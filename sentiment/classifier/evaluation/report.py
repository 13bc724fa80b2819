"""The test-set report: the network beside the linear baseline, in markdown a pull request shows."""

from __future__ import annotations

# The pictures the figures stage renders ({name}.svg) and the report embeds; the titles are
# dvc.yaml's plot names, so the comparison's `dvc plots diff` pictures get the same file names.
FIGURES = {
    "loss": "Loss per epoch",
    "accuracy": "Accuracy per epoch",
    "roc": "ROC curve (test)",
    "precision_recall": "Precision-recall curve (test, positive class)",
    "confusion": "Confusion matrix (test)",
}


def markdown_report(
    metrics: dict, baseline: dict, mistakes: list[dict], *, figures_folder: str = "figures"
) -> str:
    """A report a pull-request comment can paste: network vs linear baseline, per-class report.

    Args:
        figures_folder: where the figures stage writes its SVGs, relative to the report.
    """
    network_f1 = metrics["report"]["positive"]["f1-score"]
    lines = [
        "# Test-set report",
        "",
        f"{metrics['reviews']:,} IMDB test reviews (never seen in training or validation).",
        "",
        "| model | accuracy | F1 (positive) | ROC AUC |",
        "|---|---|---|---|",
        f"| network | {metrics['accuracy']:.4f} | {network_f1:.4f} | {metrics['roc_auc']:.4f} |",
        f"| TF-IDF + logistic regression | {baseline['accuracy']:.4f} | {baseline['f1']:.4f} "
        f"| {baseline['roc_auc']:.4f} |",
        f"| network minus baseline | {metrics['accuracy'] - baseline['accuracy']:+.4f} "
        f"| {network_f1 - baseline['f1']:+.4f} | {metrics['roc_auc'] - baseline['roc_auc']:+.4f} |",
        "",
        "## Classification report (network)",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, row in metrics["report"].items():
        lines.append(
            f"| {name.replace('_', ' ')} | {row['precision']:.4f} | {row['recall']:.4f} "
            f"| {row['f1-score']:.4f} | {row['support']:,} |"
        )
    matrix = metrics["confusion_matrix"]
    lines += [
        "",
        "Confusion matrix (rows: actual, columns: predicted):",
        "",
        "| | negative | positive |",
        "|---|---|---|",
        f"| negative | {matrix['true_negative']:,} | {matrix['false_positive']:,} |",
        f"| positive | {matrix['false_negative']:,} | {matrix['true_positive']:,} |",
        "",
        "## Plots",
        "",
        "Loss and accuracy per epoch for the fit and validation reviews; the ROC curve and the",
        "precision-recall curve of the positive class on the test set; and the confusion matrix",
        "of the test set. `dvc plots show` draws them interactively (`dvc plots diff main` on a",
        "branch: both revisions).",
        "",
        *(f"![{title}]({figures_folder}/{name}.svg)" for name, title in FIGURES.items()),
        "",
        f"## The {len(mistakes)} test reviews the network got most confidently wrong",
        "",
        "| true label | P(positive) | excerpt |",
        "|---|---|---|",
    ]
    for mistake in mistakes:
        excerpt = " ".join(mistake["excerpt"].replace("|", "\\|").split())
        lines.append(
            f"| {mistake['true_label']} | {mistake['probability_positive']:.4f} | {excerpt} |"
        )
    return "\n".join(lines) + "\n"
