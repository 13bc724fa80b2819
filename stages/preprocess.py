"""Stage preprocess: vocabulary from the training reviews, padded train/validation/test splits."""

import argparse
from pathlib import Path

from sentiment.classifier.data.preprocessing import prepare_splits
from sentiment.classifier.data.reviews import SPLITS, read_reviews
from sentiment.classifier.data.splits import (
    VOCABULARY_FILE,
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

    reviews = {split: read_reviews(args.reviews / f"{split}.jsonl") for split in SPLITS}
    splits, vocabulary = prepare_splits(reviews, **params)
    with atomic_output(args.output, directory=True) as output:
        for name, split in splits.items():
            save_split(split, output / f"{name}.npz")
        save_vocabulary(vocabulary, output / VOCABULARY_FILE)
    statistics = {
        "vocabulary_words": len(vocabulary),
        **{name: split_statistics(split, params["max_length"]) for name, split in splits.items()},
    }
    write_json(args.statistics, statistics)
    sizes = ", ".join(f"{name} {len(split):,}" for name, split in splits.items())
    log(f"preprocess: {len(vocabulary):,} words; {sizes} reviews")


if __name__ == "__main__":
    run_main(main)
