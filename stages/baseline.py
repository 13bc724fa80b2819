"""Stage baseline: NBSVM-style naive-Bayes n-grams with logistic regression, on the network's
splits, chosen on its validation split, for every report; saved as a model that reads raw text,
with its validation and test probabilities."""

import argparse
from pathlib import Path

from sentiment.classifier.data.preprocessing import PARTS
from sentiment.classifier.data.splits import load_fit_words, load_words
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_json
from sentiment.params import stage_params

VALIDATION_SCORES = "validation_scores.npy"
TEST_SCORES = "test_scores.npy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--words", type=Path, required=True, help="preprocess's folder of each split's words"
    )
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="folder for the model and its validation and test probabilities",
    )
    parser.add_argument("--metrics", type=Path, required=True, help="where to write its metrics")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("baseline", args.params)

    words = {name: load_words(args.words / f"{name}.npz") for name in PARTS}
    spelled = load_fit_words(args.words, int(words["train"].distinct))
    from sentiment.classifier.evaluation.baseline import fit_baseline
    from sentiment.classifier.model.scores import save_scores

    fitted = fit_baseline(words, spelled, **params)
    with atomic_output(args.model, directory=True) as output:
        fitted.model.save(output)
        save_scores(output / VALIDATION_SCORES, fitted.validation)
        save_scores(output / TEST_SCORES, fitted.test)
    write_json(args.metrics, fitted.metrics)
    metrics = fitted.metrics
    log(
        f"baseline: test accuracy {metrics['accuracy']:.4f}, ROC AUC {metrics['roc_auc']:.4f}, "
        f"log loss {metrics['log_loss']:.4f} ({metrics['features']:,} n-grams)"
    )


if __name__ == "__main__":
    run_main(main)
