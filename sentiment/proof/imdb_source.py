"""Say where the download stage would get IMDB from here, without fetching it.

Usage:
  sentiment imdb-source [--origin HOST:PORT] [--unlabelled]

The download host probed is tensorflow-datasets' (ai.stanford.edu:80), or SENTIMENT_IMDB_ORIGIN
(HOST:PORT) where that is set, or --origin.

Prints one line: `mirror PATH` (IMDB_MIRROR or imdb_mirror.local), `tensorflow-datasets cache`
(tensorflow-datasets' folder already holds imdb_reviews: TFDS_DATA_DIR, else its default),
`tensorflow-datasets download` (the download host answers), or `none: ...` with the fixes, in the
order the stage tries them. Exit status 0 when IMDB can be had, 1 when not: CI reproduces the
committed results whenever it is 0. With --unlabelled, the same for IMDB's unlabelled reviews
(the unlabelled stage's `unlabelled: imdb`): IMDB_UNLABELLED_MIRROR or
imdb_unlabelled_mirror.local first, then the labelled mirror if it holds them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sentiment.classifier.data.imdb import (
    MIRROR_ENV,
    MIRROR_SETTING,
    TFDS_ORIGIN,
    UNLABELLED_MIRROR_ENV,
    UNLABELLED_MIRROR_SETTING,
    mirror_from_environment,
    network_reaches,
    read_unlabelled_mirror,
    tfds_is_prepared,
    unlabelled_mirror_from_environment,
)
from sentiment.errors import PipelineError


def imdb_source(origin: tuple[str, int] = TFDS_ORIGIN, unlabelled: bool = False) -> str | None:
    """The stage's first working source of IMDB (or of its unlabelled reviews), or None."""
    mirror = mirror_from_environment()
    if unlabelled:
        if unlabelled_mirror_from_environment():
            return f"mirror {unlabelled_mirror_from_environment()}"
        if mirror and os.path.exists(mirror) and read_unlabelled_mirror(Path(mirror)):
            return f"mirror {mirror}"
    elif mirror:
        return f"mirror {mirror}"
    if tfds_is_prepared(os.environ.get("TFDS_DATA_DIR")):
        return "tensorflow-datasets cache"
    if network_reaches(origin):
        return "tensorflow-datasets download"
    return None


def _origin(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


ORIGIN_ENV = "SENTIMENT_IMDB_ORIGIN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """imdb-source's command line."""
    default = os.environ.get(ORIGIN_ENV)
    parser.add_argument(
        "--origin",
        type=_origin,
        default=_origin(default) if default else TFDS_ORIGIN,
        help=f"the download host probed (default {TFDS_ORIGIN[0]}:{TFDS_ORIGIN[1]}, "
        f"or {ORIGIN_ENV})",
    )
    parser.add_argument(
        "--unlabelled",
        action="store_true",
        help="where the unlabelled stage would get IMDB's unlabelled reviews (unlabelled: imdb)",
    )


def run(args: argparse.Namespace) -> None:
    """Print the source; exit 1 when there is none."""
    source = imdb_source(args.origin, unlabelled=args.unlabelled)
    variable = UNLABELLED_MIRROR_ENV if args.unlabelled else MIRROR_ENV
    if source is None:
        mirrors = (
            f"no {UNLABELLED_MIRROR_ENV} or {UNLABELLED_MIRROR_SETTING}, no IMDB mirror that "
            "holds aclImdb/train/unsup/"
            if args.unlabelled
            else f"no {MIRROR_ENV} or {MIRROR_SETTING}"
        )
        print(
            f"none: {mirrors}, no imdb_reviews in tensorflow-datasets' folder, and "
            f"{args.origin[0]} is unreachable"
        )
        sys.exit(1)
    if source.startswith("mirror ") and not os.path.exists(source.removeprefix("mirror ")):
        raise PipelineError(f"{source.removeprefix('mirror ')} does not exist: fix {variable}")
    print(source)
