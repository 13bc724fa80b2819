"""Say where the download stage would get IMDB from here, without fetching it.

Usage:
  sentiment imdb-source [--origin HOST:PORT]

The download host probed is tensorflow-datasets' (ai.stanford.edu:80), or SENTIMENT_IMDB_ORIGIN
(HOST:PORT) where that is set, or --origin.

Prints one line: `mirror PATH` (IMDB_MIRROR or imdb_mirror.local), `tensorflow-datasets cache`
(tensorflow-datasets' folder already holds imdb_reviews: TFDS_DATA_DIR, else its default),
`tensorflow-datasets download` (the download host answers), or `none: ...` with the fixes, in the
order the stage tries them. Exit status 0 when IMDB can be had, 1 when not: CI reproduces the
committed results whenever it is 0.
"""

from __future__ import annotations

import argparse
import os
import sys

from sentiment.classifier.data.imdb import (
    MIRROR_ENV,
    MIRROR_SETTING,
    TFDS_ORIGIN,
    mirror_from_environment,
    network_reaches,
    tfds_is_prepared,
)
from sentiment.errors import PipelineError


def imdb_source(origin: tuple[str, int] = TFDS_ORIGIN) -> str | None:
    """The stage's first working source of IMDB, or None."""
    mirror = mirror_from_environment()
    if mirror:
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


def run(args: argparse.Namespace) -> None:
    """Print the source; exit 1 when there is none."""
    source = imdb_source(args.origin)
    if source is None:
        print(
            f"none: no {MIRROR_ENV} or {MIRROR_SETTING}, no imdb_reviews in tensorflow-datasets' "
            f"folder, and {args.origin[0]} is unreachable"
        )
        sys.exit(1)
    if source.startswith("mirror ") and not os.path.exists(source.removeprefix("mirror ")):
        raise PipelineError(f"{source.removeprefix('mirror ')} does not exist: fix {MIRROR_ENV}")
    print(source)
