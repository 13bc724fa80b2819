"""Labelled reviews as the download stage writes them: canonical order, fingerprints, JSON lines.

Whatever the source, reviews are put in one canonical order and fingerprinted, so the download
stage writes the same bytes (and dvc.lock the same hashes) whichever way the data arrived.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from sentiment.errors import PipelineError

SPLITS = ("train", "test")
LABEL_NAMES = ("negative", "positive")

Reviews = list[tuple[str, int]]  # (text, label) with label 0 = negative, 1 = positive


class DataError(PipelineError):
    """Input data that is missing, corrupt, or not what it claims to be."""


def canonical(reviews: Reviews) -> Reviews:
    """Reviews in an order that depends only on their content, not on how they were read."""
    return sorted(reviews, key=lambda review: (review[0], review[1]))


def fingerprint(reviews: Reviews) -> str:
    """sha256 of the canonical (label, text) records: equal sets of reviews, equal fingerprint."""
    digest = hashlib.sha256()
    for text, label in canonical(reviews):
        record = f"{label}\t{text}".encode()
        digest.update(len(record).to_bytes(8, "little"))  # length-prefixed: no ambiguity
        digest.update(record)
    return digest.hexdigest()


def write_reviews(reviews: Reviews, path: Path) -> None:
    """One JSON object per line, in canonical order: same reviews, same bytes."""
    with path.open("w", encoding="utf-8", newline="\n") as stream:
        for text, label in canonical(reviews):
            stream.write(json.dumps({"label": label, "text": text}, ensure_ascii=False) + "\n")


def iter_reviews(path: Path) -> Iterator[tuple[str, int]]:
    """Read back what `write_reviews` wrote."""
    with path.open(encoding="utf-8") as stream:
        for line_number, line in enumerate(stream, start=1):
            try:
                record = json.loads(line)
                yield record["text"], int(record["label"])
            except (ValueError, KeyError, TypeError):
                raise DataError(
                    f"{path}:{line_number} is not a review record: run `dvc repro download`"
                ) from None


def read_reviews(path: Path) -> Reviews:
    """All reviews of one split file."""
    if not path.exists():
        raise DataError(f"{path} is missing: run `dvc repro download` first")
    return list(iter_reviews(path))


def test_texts(reviews: Path, count: int | None = None) -> list[str]:
    """The first `count` (default: all) test texts of download's folder, in the split's order.

    preprocess keeps the test reviews in download's order, so text i is row i of its test split.
    """
    records = iter_reviews(reviews / "test.jsonl")
    return [text for text, _ in islice(records, count)]


def manifest(reviews: dict[str, Reviews], fingerprints: dict[str, str], dataset: str) -> dict:
    """What the download stage proves about its output (no source: it must not change bytes)."""
    return {
        "dataset": dataset,
        "splits": {
            split: {
                "reviews": len(reviews[split]),
                "positive": sum(label for _, label in reviews[split]),
                "fingerprint": fingerprints[split],
            }
            for split in SPLITS
        },
    }
