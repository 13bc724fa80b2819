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
    metrics: dict,
    baseline: dict,
    mistakes: list[dict],
    *,
    figures_folder: str = "figures",
    dataset: str = "IMDB",
    label_names: list[str] | tuple[str, ...] = ("negative", "positive"),
    train_test_overlap: int = 0,
    manifest: dict | None = None,
) -> str:
    """A report a pull-request comment can paste: network vs linear baseline, per-class report.

    Args:
        figures_folder: where the figures stage writes its SVGs, relative to the report.
        dataset: what the reviews are, as the report's first line names them.
        train_test_overlap: test texts that also occur in the training reviews (warned of).
        manifest: download's, whose files and split sizes the report names.
    """
    names = list(label_names)
    binary = len(names) == 2
    f1_name = f"F1 ({names[1]})" if binary else "F1 (macro)"
    network_f1 = metrics["report"][(names[1] if binary else "macro avg").replace(" ", "_")][
        "f1-score"
    ]
    lines = [
        "# Test-set report",
        "",
        f"{metrics['reviews']:,} {dataset} test reviews (never seen in training or validation).",
        "",
    ]
    if manifest and manifest.get("files"):
        files = ", ".join(f"`{path}`" for path in manifest["files"].values())
        sizes = ", ".join(
            f"{split} {stats['reviews']:,}" for split, stats in manifest["splits"].items()
        )
        lines += [f"Read from {files}: {sizes} reviews; labels {', '.join(names)}.", ""]
    if train_test_overlap:
        share = train_test_overlap / max(metrics["reviews"], 1)
        lines += [
            f"**Warning:** {train_test_overlap:,} test texts ({share:.2%}) also occur among the "
            "training reviews: on them the test scores may overstate how the model does on new "
            "text.",
            "",
        ]
    lines += [
        f"| model | accuracy | {f1_name} | ROC AUC |",
        "|---|---|---|---|",
        f"| network | {metrics['accuracy']:.4f} | {network_f1:.4f} | {metrics['roc_auc']:.4f} |",
        f"| NBSVM baseline | {baseline['accuracy']:.4f} | {baseline['f1']:.4f} "
        f"| {baseline['roc_auc']:.4f} |",
        f"| network minus baseline | {metrics['accuracy'] - baseline['accuracy']:+.4f} "
        f"| {network_f1 - baseline['f1']:+.4f} | {metrics['roc_auc'] - baseline['roc_auc']:+.4f} |",
        "",
    ]
    if "longest_ngram" in baseline:
        lines += [
            "The baseline: binary n-grams of up to "
            f"{baseline['longest_ngram']} words weighted by their naive-Bayes log-count ratios, "
            f"logistic regression with C = {baseline['regularisation']:g} "
            f"({baseline['features']:,} features), both chosen on the validation split "
            f"(accuracy {baseline['validation_accuracy']:.4f}).",
            "",
        ]
    lines += [
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
    lines += [
        "",
        "Confusion matrix (rows: actual, columns: predicted):",
        "",
        *_confusion_table(metrics["confusion_matrix"], names),
        "",
        "## Plots",
        "",
        "Loss and accuracy per epoch for the fit and validation reviews; the ROC curve and the",
        "precision-recall curve of the positive class on the test set; and the confusion matrix"
        if binary
        else "Loss and accuracy per epoch for the fit and validation reviews; the ROC and the\n"
        "precision-recall curves on the test set, one-vs-rest and micro-averaged over the labels;\n"
        "and the confusion matrix",
        "of the test set. `dvc plots show` draws them interactively (`dvc plots diff main` on a",
        "branch: both revisions).",
        "",
        *(f"![{title}]({figures_folder}/{name}.svg)" for name, title in FIGURES.items()),
        "",
        f"## The {len(mistakes)} test reviews the network got most confidently wrong",
        "",
    ]
    if binary:
        lines += [f"| true label | P({names[1]}) | excerpt |", "|---|---|---|"]
    else:
        lines += ["| true label | predicted | P(predicted) | excerpt |", "|---|---|---|---|"]
    for mistake in mistakes:
        excerpt = " ".join(mistake["excerpt"].replace("|", "\\|").split())
        if binary:
            cells = [mistake["true_label"], f"{mistake['probability_positive']:.4f}", excerpt]
        else:
            cells = [
                mistake["true_label"],
                mistake["predicted_label"],
                f"{mistake['probability']:.4f}",
                excerpt,
            ]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _confusion_table(matrix: dict, names: list[str]) -> list[str]:
    """Markdown rows of the confusion matrix, actual by row, predicted by column."""
    if len(names) == 2:
        negative, positive = names
        counts = {
            negative: {negative: matrix["true_negative"], positive: matrix["false_positive"]},
            positive: {negative: matrix["false_negative"], positive: matrix["true_positive"]},
        }
    else:
        counts = matrix
    rows = [f"| | {' | '.join(names)} |", "|---" * (len(names) + 1) + "|"]
    for actual in names:
        cells = " | ".join(f"{counts[actual][predicted]:,}" for predicted in names)
        rows.append(f"| {actual} | {cells} |")
    return rows
