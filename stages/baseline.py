"""Stage baseline: NBSVM-style naive-Bayes n-grams with logistic regression, on the network's
splits, chosen on its validation split, for every report."""

import argparse
from pathlib import Path

from sentiment.classifier.data.reviews import read_splits
from sentiment.console import log, run_main
from sentiment.files import write_json
from sentiment.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=Path, required=True, help="download's output folder")
    parser.add_argument("--metrics", type=Path, required=True, help="where to write its metrics")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("baseline", args.params)

    from sentiment.classifier.evaluation.baseline import fit_and_score_baseline

    reviews = read_splits(args.reviews)
    metrics = fit_and_score_baseline(reviews, **params)
    write_json(args.metrics, metrics)
    log(f"baseline: test accuracy {metrics['accuracy']:.4f}, ROC AUC {metrics['roc_auc']:.4f}")


if __name__ == "__main__":
    run_main(main)
