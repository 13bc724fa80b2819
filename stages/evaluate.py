"""Stage evaluate: test-set accuracy, ROC AUC, classification report and confusion matrix."""

import argparse
import json
from pathlib import Path

from sentiment.cli import atomic_output, log, run_stage
from sentiment.params import stage_params
from sentiment.splits import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument("--model", type=Path, required=True, help="the trained .keras model")
    parser.add_argument("--metrics", type=Path, required=True, help="where to write test metrics")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("evaluate", args.params)

    from sentiment.evaluation import score_predictions
    from sentiment.training import load_trained_model, predict_probabilities

    test = load_split(args.data / "test.npz")
    probabilities = predict_probabilities(load_trained_model(args.model), test.token_ids)
    metrics = score_predictions(test.labels, probabilities, **params)
    with atomic_output(args.metrics) as path:
        path.write_text(json.dumps(metrics, indent=2) + "\n")
    log(f"evaluate: test accuracy {metrics['accuracy']:.4f}, ROC AUC {metrics['roc_auc']:.4f}")


if __name__ == "__main__":
    run_stage(main)
