"""Stage download: IMDB's labelled reviews (or synthetic ones) as canonical JSON lines."""

import argparse
from pathlib import Path

from sentiment.classifier.data.imdb import mirror_from_environment
from sentiment.classifier.data.reviews import SPLITS, manifest, write_reviews
from sentiment.classifier.data.sources import get_reviews
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_json
from sentiment.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True, help="folder for the reviews")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("download", args.params)

    reviews, fingerprints, source = get_reviews(**params, mirror=mirror_from_environment())
    with atomic_output(args.output, directory=True) as output:
        for split in SPLITS:
            write_reviews(reviews[split], output / f"{split}.jsonl")
        summary = manifest(reviews, fingerprints, params["dataset"])
        write_json(output / "manifest.json", summary)
    counts = ", ".join(f"{split} {len(reviews[split]):,}" for split in SPLITS)
    log(f"download: {params['dataset']} from {source}: {counts} reviews")


if __name__ == "__main__":
    run_main(main)
