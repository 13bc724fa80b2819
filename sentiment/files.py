"""Outputs written all-or-nothing, and the fixed time stamp that makes zip outputs reproducible."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

# The member time of every zip the pipeline writes (.npz splits, .keras models): a fixed one makes
# the same contents give the same bytes, as DVC's hashes need (np.savez and Keras stamp the clock).
# 1980-01-01 is the earliest time a zip entry can hold.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


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
