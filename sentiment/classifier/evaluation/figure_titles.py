"""The figures of a run, by file name and title."""

# The pictures the figures stage renders ({name}.svg) and the report embeds; the titles are
# dvc.yaml's plot names, so the comparison's `dvc plots diff` pictures get the same file names.
FIGURES = {
    "loss": "Loss per epoch",
    "accuracy": "Accuracy per epoch",
    "roc": "ROC curve (test)",
    "precision_recall": "Precision-recall curve (test, positive class)",
    "confusion": "Confusion matrix (test)",
}
