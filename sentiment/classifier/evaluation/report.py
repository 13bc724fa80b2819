"""The test-set report: the network, the linear baseline and their blend, which one ships, and the
network's mistakes, in markdown a pull request shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentiment.classifier.evaluation.figure_titles import FIGURES
from sentiment.classifier.model.blend import weight_meaning

if TYPE_CHECKING:
    from sentiment.classifier.evaluation.shipped import Comparison

MODEL_NAMES = {"network": "network", "baseline": "NBSVM baseline", "blend": "blend"}


def markdown_report(
    metrics: dict,
    baseline: dict,
    mistakes: list[dict],
    *,
    comparison: Comparison,
    figures_folder: str = "figures",
    dataset: str = "IMDB",
    label_names: list[str] | tuple[str, ...] = ("negative", "positive"),
    train_test_overlap: int = 0,
    manifest: dict | None = None,
) -> str:
    """A report a pull-request comment can paste: the three models, what ships, per-class report.

    Args:
        metrics: the network's test metrics; baseline: the baseline stage's metrics (its choice
            of n-grams and regularisation); comparison: the three models scored alike.
        figures_folder: where the figures stage writes its SVGs, relative to the report.
        dataset: what the reviews are, as the report's first line names them.
        train_test_overlap: test texts that also occur in the training reviews (warned of).
        manifest: download's, whose files and split sizes the report names.
    """
    names = list(label_names)
    binary = len(names) == 2
    f1_name = f"F1 ({names[1]})" if binary else "F1 (macro)"
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
    lines += [*_models_table(comparison, f1_name), ""]
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


def _models_table(comparison: Comparison, f1_name: str) -> list[str]:
    """The three models' validation and test figures, the shipped one marked, and what ships."""
    weight = comparison.choice.weight
    rows = [
        f"| model | validation accuracy | test accuracy | {f1_name} | ROC AUC | log loss |",
        "|---|---|---|---|---|---|",
    ]
    for name, model in comparison.models.items():
        figures = model.headline(comparison.label_names)
        shown = MODEL_NAMES[name] + (f" (network weight {weight:g})" if name == "blend" else "")
        if name == comparison.ship:
            shown = f"**{shown}, ships**"
        rows.append(
            f"| {shown} | {model.validation_accuracy:.4f} | {figures['accuracy']:.4f} "
            f"| {figures['f1']:.4f} | {figures['roc_auc']:.4f} | {figures['log_loss']:.4f} |"
        )
    return [
        *rows,
        "",
        f"What ships (`ship: {comparison.ship}`): the {MODEL_NAMES[comparison.ship]}, one "
        "SavedModel on raw text (`dvc repro export`). The blend's weight is the network's share, "
        "from 0 (the baseline alone) to 1 (the network alone) in steps of 0.05, chosen on the "
        f"validation split's accuracy, never the test split's; here {weight_meaning(weight)}. "
        "Validation accuracy is at probability 0.5 (the likeliest label), as the choices were "
        "made.",
    ]


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
