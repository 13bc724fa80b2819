"""Stage unlabelled: the `unlabelled` param's texts (none, IMDB's 50,000 unlabelled reviews, or the
user's file or folder), checked, de-duplicated against every labelled split and themselves, as
JSON lines with a manifest of what was read, dropped and kept."""

import argparse
from pathlib import Path

from sentiment.classifier.data.imdb import (
    mirror_from_environment,
    unlabelled_mirror_from_environment,
)
from sentiment.classifier.data.reviews import read_splits
from sentiment.classifier.data.unlabelled import get_unlabelled, write_unlabelled
from sentiment.console import log, run_main
from sentiment.files import atomic_output
from sentiment.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=Path, required=True, help="download's folder")
    parser.add_argument("--output", type=Path, required=True, help="folder for the texts")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("unlabelled", args.params)

    found = get_unlabelled(
        params["unlabelled"],
        text_column=params["text_column"],
        labelled=read_splits(args.reviews),
        mirror=unlabelled_mirror_from_environment(),
        labelled_mirror=mirror_from_environment(),
    )
    with atomic_output(args.output, directory=True) as output:
        write_unlabelled(found, params["unlabelled"], output)
    log(f"unlabelled: {found.summary()}")


if __name__ == "__main__":
    run_main(main)
