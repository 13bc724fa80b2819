"""Stage word_vectors: word2vec vectors from the training reviews and the unlabelled texts, to
start the embedding."""

import argparse
from pathlib import Path

from sentiment.classifier.data.splits import UNLABELLED_FILE, embedding_rows, load_split
from sentiment.classifier.training.word_vectors import (
    NOT_TRAINED_FILE,
    VECTORS_FILE,
    train_word_vectors,
)
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_text
from sentiment.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument("--output", type=Path, required=True, help="folder for the vectors")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("word_vectors", args.params)

    with atomic_output(args.output, directory=True) as output:
        if params["embedding_init"] != "word2vec":  # nothing to learn: cost nothing
            write_text(output / NOT_TRAINED_FILE, "embedding_init is random: no vectors\n")
            log("word_vectors: embedding_init is random, nothing to train")
            return
        import numpy as np

        vocab_size = embedding_rows(args.data)
        train = load_split(args.data / "train.npz").token_ids
        unlabelled = load_split(args.data / UNLABELLED_FILE).token_ids
        table = train_word_vectors(
            np.concatenate([train, unlabelled]),
            vocab_size=vocab_size,
            dimensions=params["embedding_dim"],
            seed=params["seed"],
        )
        np.save(output / VECTORS_FILE, table, allow_pickle=False)
    log(
        f"word_vectors: {vocab_size:,} x {params['embedding_dim']} vectors from {len(train):,} "
        f"training reviews and {len(unlabelled):,} unlabelled texts"
    )


if __name__ == "__main__":
    run_main(main)
