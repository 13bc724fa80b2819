"""Stage preprocess: vocabulary from the training reviews, padded train/validation/test splits."""

import argparse
from pathlib import Path

from sentiment.classifier.data.preprocessing import prepare_splits
from sentiment.classifier.data.reviews import VALIDATION, read_labels, read_splits, texts_in_both
from sentiment.classifier.data.splits import (
    LABELS_FILE,
    VOCABULARY_FILE,
    save_labels,
    save_split,
    save_vocabulary,
    split_statistics,
)
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_json
from sentiment.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=Path, required=True, help="download's output folder")
    parser.add_argument("--output", type=Path, required=True, help="folder for the splits")
    parser.add_argument("--statistics", type=Path, required=True, help="JSON of data statistics")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("preprocess", args.params)

    reviews = read_splits(args.reviews)
    labels = read_labels(args.reviews)
    splits, vocabulary = prepare_splits(reviews, **params, label_names=labels)
    with atomic_output(args.output, directory=True) as output:
        for name, split in splits.items():
            save_split(split, output / f"{name}.npz")
        save_vocabulary(vocabulary, output / VOCABULARY_FILE)
        save_labels(labels, output / LABELS_FILE)
    training_texts = reviews["train"] + reviews.get(VALIDATION, [])
    statistics = {
        "vocabulary_words": len(vocabulary),
        **{
            name: split_statistics(split, params["max_length"], labels)
            for name, split in splits.items()
        },
        # test texts that also occur among the training (or validation) reviews: warned of
        "train_test_overlap": texts_in_both(training_texts, reviews["test"]),
    }
    write_json(args.statistics, statistics)
    sizes = ", ".join(f"{name} {len(split):,}" for name, split in splits.items())
    log(f"preprocess: {len(vocabulary):,} words, {len(labels)} labels; {sizes} reviews")


if __name__ == "__main__":
    run_main(main)
