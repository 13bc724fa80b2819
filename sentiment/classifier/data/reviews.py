"""Labelled reviews as the download stage writes them: canonical order, fingerprints, JSON lines.

Whatever the source, reviews are put in one canonical order and fingerprinted, so the download
stage writes the same bytes (and dvc.lock the same hashes) whichever way the data arrived.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from sentiment.errors import PipelineError

SPLITS = ("train", "test")  # every dataset has these; a validation split only when it gives one
VALIDATION = "validation"
LABEL_NAMES = ("negative", "positive")  # the labels of IMDB and of two-label synthetic reviews
MANIFEST = "manifest.json"
UNLABELLED_TEXTS = "texts.jsonl"  # the unlabelled stage's texts, beside its manifest

Reviews = list[tuple[str, int]]  # (text, label): the label's index in the dataset's labels


class DataError(PipelineError):
    """Input data that is missing, corrupt, or not what it claims to be."""


def canonical(reviews: Reviews) -> Reviews:
    """Reviews in an order that depends only on their content, not on how they were read."""
    return sorted(reviews, key=lambda review: (review[0], review[1]))


def _digest(records: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for record in records:
        encoded = record.encode()
        digest.update(len(encoded).to_bytes(8, "little"))  # length-prefixed: no ambiguity
        digest.update(encoded)
    return digest.hexdigest()


def fingerprint(reviews: Reviews) -> str:
    """sha256 of the canonical (label, text) records: equal sets of reviews, equal fingerprint."""
    return _digest(f"{label}\t{text}" for text, label in canonical(reviews))


def text_fingerprint(texts: Iterable[str]) -> str:
    """sha256 of sorted unlabelled texts: equal collections of texts, equal fingerprint."""
    return _digest(sorted(texts))


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


def read_splits(folder: Path) -> dict[str, Reviews]:
    """Every split of download's folder: train and test, and validation when the data gave one."""
    splits = {split: read_reviews(folder / f"{split}.jsonl") for split in SPLITS}
    if (folder / f"{VALIDATION}.jsonl").exists():
        splits[VALIDATION] = read_reviews(folder / f"{VALIDATION}.jsonl")
    return splits


def texts_in_both(train: Reviews, test: Reviews) -> int:
    """How many test reviews have a text that also occurs among the training reviews."""
    seen = {text for text, _ in train}
    return sum(1 for text, _ in test if text in seen)


def read_manifest(folder: Path) -> dict:
    """The manifest of download's folder: the dataset, its labels, sizes and fingerprints."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("labels"), list):
        raise DataError(f"{path} is missing or not a manifest: run `dvc repro download`")
    return manifest


def read_labels(folder: Path) -> list[str]:
    """The label names of download's folder, in their order (label i is names[i])."""
    return list(read_manifest(folder)["labels"])


def dataset_name(dataset: str) -> str:
    """The dataset as a report names it: IMDB, synthetic, or the data's path."""
    return {"imdb": "IMDB", "synthetic": "synthetic"}.get(dataset, f"`{dataset}`")


def test_texts(reviews: Path, count: int | None = None) -> list[str]:
    """The first `count` (default: all) test texts of download's folder, in the split's order.

    preprocess keeps the test reviews in download's order, so text i is row i of its test split.
    """
    records = iter_reviews(reviews / "test.jsonl")
    return [text for text, _ in islice(records, count)]


def write_texts(texts: list[str], path: Path) -> None:
    """Unlabelled texts, one JSON object per line, in the order given."""
    with path.open("w", encoding="utf-8", newline="\n") as stream:
        for text in texts:
            stream.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")


def read_unlabelled(folder: Path) -> tuple[list[str], dict]:
    """The texts the unlabelled stage kept, in its order, and its manifest."""
    path = folder / UNLABELLED_TEXTS
    if not path.exists():
        raise DataError(f"{path} is missing: run `dvc repro unlabelled` first")
    texts = []
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            try:
                texts.append(json.loads(line)["text"])
            except (ValueError, KeyError, TypeError):
                raise DataError(
                    f"{path}:{number} is not a text record: run `dvc repro unlabelled`"
                ) from None
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("kept") != len(texts):
        raise DataError(
            f"{folder / MANIFEST} is missing or does not count {path}'s texts: run "
            "`dvc repro unlabelled`"
        )
    return texts, manifest
