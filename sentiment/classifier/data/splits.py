"""Padded splits on disk: a compact, deterministic, pickle-free binary format."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentiment.classifier.data.text import FIRST_WORD_ID
from sentiment.errors import PipelineError
from sentiment.files import ZIP_TIME

VOCABULARY_FILE = "vocabulary.txt"
_ARRAYS = ("token_ids", "labels", "lengths")


@dataclass(frozen=True)
class Split:
    """One split's padded token ids (n, max_length), labels (n,) and unpadded lengths (n,)."""

    token_ids: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def carve_validation(
    labels: np.ndarray, *, validation_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) of a seeded, label-stratified split of the training reviews."""
    rng = np.random.default_rng(seed)
    fit, validation = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out = round(len(members) * validation_split)
        validation.append(members[:held_out])
        fit.append(members[held_out:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(validation))


def save_split(split: Split, path: Path) -> None:
    """Write a split as an .npz that numpy reads with allow_pickle=False."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name in _ARRAYS:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, getattr(split, name), allow_pickle=False)


def load_split(path: Path) -> Split:
    """Read a split written by `save_split`."""
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `dvc repro preprocess` first")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return Split(*(arrays[name] for name in _ARRAYS))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise PipelineError(
            f"{path} is not a preprocessed split ({error.__class__.__name__}): "
            "run `dvc repro preprocess`"
        ) from None


def save_vocabulary(vocabulary: list[str], path: Path) -> None:
    """One word per line; line i holds the word with id i + 2."""
    path.write_text("".join(f"{word}\n" for word in vocabulary), encoding="utf-8")


def load_vocabulary(path: Path) -> list[str]:
    """Read a vocabulary written by `save_vocabulary`."""
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `dvc repro preprocess` first")
    return path.read_text(encoding="utf-8").splitlines()


def embedding_rows(data: Path) -> int:
    """The token ids a model over preprocess's output needs: its words plus padding and unknown.

    At most the vocab_size param, fewer when the training reviews hold fewer words.
    """
    return len(load_vocabulary(data / VOCABULARY_FILE)) + FIRST_WORD_ID


def split_statistics(split: Split, max_length: int) -> dict[str, float | int]:
    """Sizes, lengths and the share of reviews cut short, for a human and `dvc metrics diff`."""
    lengths = split.lengths
    kept_tokens = np.minimum(lengths, max_length).sum()
    return {
        "reviews": len(split),
        "positive_share": round(float(split.labels.mean()), 4) if len(split) else 0.0,
        "median_tokens": float(np.median(lengths)) if len(split) else 0.0,
        "p95_tokens": float(np.percentile(lengths, 95)) if len(split) else 0.0,
        "truncated_share": round(float((lengths > max_length).mean()), 4) if len(split) else 0.0,
        # share of the kept (not truncated) tokens that fell outside the vocabulary
        "oov_share": round(float((split.token_ids == 1).sum() / max(int(kept_tokens), 1)), 4),
    }
