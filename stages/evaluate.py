"""Stage evaluate: test metrics, curves, confident mistakes, and a report of the network, the
baseline and their blend (its weight chosen on the validation split), saying which one ships."""

import argparse
import json
import os
from pathlib import Path

from sentiment.classifier.data.reviews import dataset_name, read_manifest, test_texts
from sentiment.classifier.data.splits import load_labels, load_split
from sentiment.classifier.evaluation import metrics as evaluation
from sentiment.classifier.evaluation.report import markdown_report
from sentiment.classifier.evaluation.shipped import compare_models
from sentiment.classifier.model.scores import load_scores
from sentiment.console import log, run_main
from sentiment.files import write_json, write_text
from sentiment.params import check_for_labels, load_params, stage_params

MISTAKES_SHOWN = 20
BASELINE_SCORES = {"validation": "validation_scores.npy", "test": "test_scores.npy"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument("--reviews", type=Path, required=True, help="download's output folder")
    parser.add_argument(
        "--scores", type=Path, required=True, help="train's probabilities for the test split"
    )
    parser.add_argument(
        "--validation-scores",
        type=Path,
        required=True,
        help="train's probabilities for the validation split",
    )
    parser.add_argument("--baseline", type=Path, required=True, help="the baseline's metrics")
    parser.add_argument(
        "--baseline-model",
        type=Path,
        required=True,
        help="the baseline stage's model folder (its validation and test probabilities)",
    )
    parser.add_argument(
        "--statistics", type=Path, required=True, help="preprocess's data statistics (JSON)"
    )
    parser.add_argument(
        "--metrics", type=Path, required=True, help="where to write the network's test metrics"
    )
    parser.add_argument(
        "--shipped",
        type=Path,
        required=True,
        help="where to write the shipped model's metrics (which model, test and validation)",
    )
    parser.add_argument(
        "--blend", type=Path, required=True, help="where to write the blend's weight and metrics"
    )
    parser.add_argument("--plots", type=Path, required=True, help="folder for the plot data")
    parser.add_argument("--report", type=Path, required=True, help="where to write the report")
    parser.add_argument(
        "--figures", type=Path, required=True, help="the figures stage's folder the report embeds"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("evaluate", args.params)
    label_names = load_labels(args.data)
    check_for_labels(load_params(args.params), len(label_names))

    test = load_split(args.data / "test.npz")
    validation = load_split(args.data / "validation.npz")
    probabilities = load_scores(args.scores, reviews=len(test), labels=len(label_names))
    network_validation = load_scores(
        args.validation_scores, reviews=len(validation), labels=len(label_names), split="validation"
    )
    baseline_scores = [
        load_scores(
            args.baseline_model / BASELINE_SCORES[split],
            reviews=len(reviews),
            labels=len(label_names),
            stage="baseline",
            split=split,
        )
        for split, reviews in (("validation", validation), ("test", test))
    ]
    labels = test.labels.astype(int)
    threshold = {"decision_threshold": params["decision_threshold"]}
    comparison = compare_models(
        (network_validation, probabilities),
        tuple(baseline_scores),
        validation.labels,
        labels,
        ship=params["ship"],
        **threshold,
        label_names=label_names,
    )
    metrics = comparison.models["network"].test  # the network's test metrics
    texts = test_texts(args.reviews, len(labels))
    mistakes = evaluation.confident_mistakes(
        texts, labels, probabilities, count=MISTAKES_SHOWN, **threshold, label_names=label_names
    )
    predicted = evaluation.predicted_labels(probabilities, params["decision_threshold"])
    baseline = json.loads(args.baseline.read_text())
    statistics = json.loads(args.statistics.read_text())
    manifest = read_manifest(args.reviews)

    args.plots.mkdir(parents=True, exist_ok=True)
    write_json(args.metrics, metrics)
    write_json(args.shipped, comparison.shipped_metrics())
    write_json(args.blend, comparison.blend_metrics())
    write_json(args.plots / "roc.json", evaluation.roc_points(labels, probabilities), indent=None)
    write_json(
        args.plots / "precision_recall.json",
        evaluation.precision_recall_points(labels, probabilities),
        indent=None,
    )
    write_text(
        args.plots / "confusion.csv", evaluation.confusion_rows(labels, predicted, label_names)
    )
    # the report links the pictures relative to itself, as GitHub resolves them
    figures_folder = Path(os.path.relpath(args.figures, args.report.parent)).as_posix()
    write_text(
        args.report,
        markdown_report(
            metrics,
            baseline,
            mistakes,
            comparison=comparison,
            figures_folder=figures_folder,
            dataset=dataset_name(manifest["dataset"]),
            manifest=manifest,
            label_names=label_names,
            train_test_overlap=statistics.get("train_test_overlap", 0),
        ),
    )
    accuracy = {name: model.test["accuracy"] for name, model in comparison.models.items()}
    log(
        f"evaluate: ships the {params['ship']}, test accuracy {accuracy[params['ship']]:.4f} "
        f"(network {accuracy['network']:.4f}, ROC AUC {metrics['roc_auc']:.4f}; baseline "
        f"{accuracy['baseline']:.4f}; blend {accuracy['blend']:.4f}, the network's weight "
        f"{comparison.choice.weight:g})"
    )


if __name__ == "__main__":
    run_main(main)
