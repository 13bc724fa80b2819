"""What every stage does around its work: one-line errors and all-or-nothing outputs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from sentiment.errors import PipelineError


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(); a PipelineError becomes `error: ...` on stderr and exit status 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def atomic_output(path: Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write into; it replaces `path` only on success.

    An interrupted or failed stage so leaves the previous output, or none, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.partial{path.suffix}")
    _remove(staging)
    if directory:
        staging.mkdir()
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    _remove(path)
    os.replace(staging, path)


def write_text(path: Path, text: str) -> None:
    """Write a whole text file all-or-nothing (see atomic_output)."""
    with atomic_output(path) as staging:
        staging.write_text(text, encoding="utf-8")


def write_json(path: Path, data: object, indent: int | None = 2) -> None:
    """Write `data` as JSON all-or-nothing; indented, with a final newline, unless indent=None."""
    text = json.dumps(data, indent=indent)
    write_text(path, text + "\n" if indent is not None else text)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def log(message: str) -> None:
    """Progress notes go to stderr; results go to files DVC tracks."""
    print(message, file=sys.stderr, flush=True)


# The train stage's last line; the benchmark reads the throughput from it.
SUMMARY_PATTERN = re.compile(r"train: ([\d,]+) reviews in ([\d.]+) s \(([\d,]+) reviews/s\)")


def training_summary(reviews_seen: int, seconds: float, val_accuracy: float) -> str:
    """One line: reviews trained on (epochs included), fit time with validation, throughput."""
    return (
        f"train: {reviews_seen:,} reviews in {seconds:.1f} s ({reviews_seen / seconds:,.0f} "
        f"reviews/s), val_accuracy {val_accuracy:.4f}"
    )
