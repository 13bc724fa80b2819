"""Stage download: the dataset's labelled reviews (IMDB, synthetic, or the user's files) as
canonical JSON lines, with a manifest of their labels, sizes and fingerprints."""

import argparse
from pathlib import Path

from sentiment.classifier.data.imdb import mirror_from_environment
from sentiment.classifier.data.reviews import MANIFEST, write_reviews
from sentiment.classifier.data.sources import get_dataset
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_json
from sentiment.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True, help="folder for the reviews")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("download", args.params)

    found = get_dataset(**params, mirror=mirror_from_environment())
    with atomic_output(args.output, directory=True) as output:
        for split, reviews in found.reviews.items():
            write_reviews(reviews, output / f"{split}.jsonl")
        write_json(output / MANIFEST, found.manifest(params["dataset"]))
    counts = ", ".join(f"{split} {len(reviews):,}" for split, reviews in found.reviews.items())
    log(
        f"download: {params['dataset']} from {found.source}: {counts} reviews, "
        f"{len(found.labels)} labels"
    )


if __name__ == "__main__":
    run_main(main)
