"""Stage preprocess: vocabulary from the training reviews, padded train/validation/test splits,
the unlabelled texts in the same ids, and every review's words uncut for the baseline."""

import argparse
from pathlib import Path

from sentiment.classifier.data.preprocessing import (
    PARTS,
    number_words,
    splits_from_words,
    unlabelled_split,
)
from sentiment.classifier.data.reviews import (
    VALIDATION,
    read_labels,
    read_splits,
    read_unlabelled,
    texts_in_both,
)
from sentiment.classifier.data.splits import (
    LABELS_FILE,
    UNLABELLED_FILE,
    VOCABULARY_FILE,
    save_fit_words,
    save_labels,
    save_split,
    save_vocabulary,
    save_words,
    split_statistics,
)
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_json
from sentiment.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=Path, required=True, help="download's output folder")
    parser.add_argument(
        "--unlabelled", type=Path, required=True, help="the unlabelled stage's output folder"
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for the splits")
    parser.add_argument(
        "--words", type=Path, required=True, help="folder for each split's words, uncut"
    )
    parser.add_argument("--statistics", type=Path, required=True, help="JSON of data statistics")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("preprocess", args.params)

    reviews = read_splits(args.reviews)
    labels = read_labels(args.reviews)
    shape = {key: params[key] for key in ("vocab_size", "max_length", "padding", "truncating")}
    # The words depend on the splits' carving only, not on the vocabulary or the padding, so the
    # baseline that reads them re-runs only when the reviews or the carving change.
    words, spelled = number_words(
        reviews,
        validation_split=params["validation_split"],
        seed=params["seed"],
        label_names=labels,
    )
    splits, vocabulary = splits_from_words(words, spelled, **shape)
    unlabelled_texts, manifest = read_unlabelled(args.unlabelled)
    padding = {key: params[key] for key in ("max_length", "padding", "truncating")}
    unlabelled = unlabelled_split(unlabelled_texts, vocabulary, **padding)
    with atomic_output(args.words, directory=True) as output:
        for name in PARTS:
            save_words(words[name], output / f"{name}.npz")
        save_fit_words(spelled, output)
    with atomic_output(args.output, directory=True) as output:
        for name, split in splits.items():
            save_split(split, output / f"{name}.npz")
        save_split(unlabelled, output / UNLABELLED_FILE)
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
    if unlabelled_texts:  # what was read, dropped and kept; the texts the splits' ids cover
        statistics["unlabelled"] = {
            key: manifest[key] for key in ("unlabelled", "read", "dropped", "kept")
        } | {
            "without_words": len(unlabelled_texts) - len(unlabelled),
            **{  # no labels: no balance
                key: value
                for key, value in split_statistics(unlabelled, params["max_length"]).items()
                if key != "positive_share"
            },
        }
    write_json(args.statistics, statistics)
    sizes = ", ".join(f"{name} {len(split):,}" for name, split in splits.items())
    texts = f"; {len(unlabelled):,} unlabelled texts" if unlabelled_texts else ""
    log(f"preprocess: {len(vocabulary):,} words, {len(labels)} labels; {sizes} reviews{texts}")


if __name__ == "__main__":
    run_main(main)
