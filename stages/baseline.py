"""Stage baseline: NBSVM-style naive-Bayes n-grams with logistic regression, on the network's
splits, chosen on its validation split, for every report."""

import argparse
from pathlib import Path

from sentiment.classifier.data.preprocessing import PARTS
from sentiment.classifier.data.splits import load_words
from sentiment.console import log, run_main
from sentiment.files import write_json
from sentiment.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--words", type=Path, required=True, help="preprocess's folder of each split's words"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="where to write its metrics")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("baseline", args.params)

    words = {name: load_words(args.words / f"{name}.npz") for name in PARTS}
    from sentiment.classifier.evaluation.baseline import score_baseline

    metrics = score_baseline(words, **params)
    write_json(args.metrics, metrics)
    log(f"baseline: test accuracy {metrics['accuracy']:.4f}, ROC AUC {metrics['roc_auc']:.4f}")


if __name__ == "__main__":
    run_main(main)
