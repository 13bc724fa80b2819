"""Stage export: the trained model behind its vectoriser, as .keras and as a SavedModel."""

import argparse
from itertools import islice
from pathlib import Path

from sentiment.cli import atomic_output, log, run_stage
from sentiment.data import iter_reviews
from sentiment.params import stage_params
from sentiment.splits import VOCABULARY_FILE, load_split, load_vocabulary

PARITY_REVIEWS = 512  # test reviews on which raw-text serving must match training-time inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=Path, required=True, help="download's output folder")
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument("--model", type=Path, required=True, help="the trained .keras model")
    parser.add_argument("--output", type=Path, required=True, help="folder for the export")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("export", args.params)

    from sentiment.export import check_parity, end_to_end_model, write_saved_model
    from sentiment.fast_layers import with_stock_layers
    from sentiment.saving import save_model
    from sentiment.training import load_trained_model

    classifier = load_trained_model(args.model)
    # Served with Keras' own layers (same weights and maths): it needs nothing of this project
    # to load, runs on cuDNN on a GPU, and converts to TensorFlow Lite.
    end_to_end = end_to_end_model(
        with_stock_layers(classifier),
        load_vocabulary(args.data / VOCABULARY_FILE),
        max_length=params["max_length"],
        padding=params["padding"],
        truncating=params["truncating"],
    )
    # preprocess keeps the test reviews in download's order, so row i is review i
    texts = [text for text, _ in islice(iter_reviews(args.reviews / "test.jsonl"), PARITY_REVIEWS)]
    test_ids = load_split(args.data / "test.npz").token_ids[: len(texts)]
    gap = check_parity(end_to_end, classifier, texts, test_ids)
    with atomic_output(args.output, directory=True) as output:
        save_model(end_to_end, output / "model.keras")
        write_saved_model(
            end_to_end, output / "saved_model", decision_threshold=params["decision_threshold"]
        )
    log(f"export: {args.output} (raw-text parity on {len(texts)} test reviews: max gap {gap:.1e})")


if __name__ == "__main__":
    run_stage(main)
