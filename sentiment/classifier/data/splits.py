"""Padded splits, and every review's words uncut, on disk: a compact, deterministic, pickle-free
binary format."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentiment.classifier.data.reviews import DataError
from sentiment.classifier.data.text import FIRST_WORD_ID
from sentiment.errors import PipelineError
from sentiment.files import ZIP_TIME

VOCABULARY_FILE = "vocabulary.txt"
LABELS_FILE = "labels.txt"  # the label names in their order: line i names label i
# preprocess's split of the unlabelled texts: token ids and lengths, every label NO_LABEL
UNLABELLED_FILE = "unlabelled.npz"
NO_LABEL = -1  # tensorflow-datasets' label of an unlabelled review too
FIT_WORDS_FILE = "words.txt"  # beside the splits' words: the fit reviews' words, word n on line n
_ARRAYS = ("token_ids", "labels", "lengths")
_WORDS_ARRAYS = ("numbers", "offsets", "labels", "distinct")


@dataclass(frozen=True)
class Split:
    """One split's padded token ids (n, max_length), labels (n,) and unpadded lengths (n,)."""

    token_ids: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Words:
    """One split's reviews as numbers of their words, every word kept, end to end.

    Words are numbered in the order the fit reviews first use them, from 1 to `distinct`; every
    word the fit reviews never use is `distinct` + 1. Review i is numbers[offsets[i]:offsets[i+1]].
    """

    numbers: np.ndarray  # int32
    offsets: np.ndarray  # int64, one more than the reviews
    labels: np.ndarray  # int8 (int32 with more than 127 labels)
    distinct: np.ndarray  # int64 scalar: the words the fit reviews use

    def __len__(self) -> int:
        return len(self.labels)

    def reviews(self) -> list[np.ndarray]:
        """Each review's word numbers (int64, ready for arithmetic on them)."""
        if not len(self):
            return []
        return np.split(self.numbers.astype(np.int64), self.offsets[1:-1])


def carve_split(
    labels: np.ndarray, *, share: float, seed: int | list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) of a seeded split stratified by label: each label gives `share`
    of its reviews (rounded) to the held-out part; both come back in their original order."""
    rng = np.random.default_rng(seed)
    kept, held_out = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = round(len(members) * share)
        held_out.append(members[:count])
        kept.append(members[count:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held_out))


def check_stratifiable(
    labels: np.ndarray, names: list[str], *, share: float, what: str, where: str
) -> None:
    """Refuse a label too rare for a stratified split of `share`: each side needs one review."""
    for index, name in enumerate(names):
        count = int(np.sum(labels == index))
        held_out = round(count * share)
        if held_out < 1 or held_out >= count:
            raise DataError(
                f"label {name!r} has {count} review(s) in {where}: too few for a stratified "
                f"{what} of {share} (each side needs one); add reviews of it, merge it with "
                "another label, or give that split as a file"
            )


def save_arrays(data: object, names: tuple[str, ...], path: Path) -> None:
    """Write the named arrays as an .npz that numpy reads with allow_pickle=False (the same bytes
    for the same arrays: fixed member dates, no compression)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name in names:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, getattr(data, name), allow_pickle=False)


def load_arrays(
    path: Path, names: tuple[str, ...], what: str, fix: str = "run `dvc repro preprocess`"
) -> list[np.ndarray]:
    """The named arrays of an .npz `save_arrays` wrote; a missing or unreadable file is one line
    that says `what` it should be and the `fix`."""
    if not path.exists():
        raise PipelineError(f"{path} is missing: {fix}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return [arrays[name] for name in names]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{path} is not {what} ({error.__class__.__name__}): {fix}") from None


def save_split(split: Split, path: Path) -> None:
    """Write a split as an .npz that numpy reads with allow_pickle=False."""
    save_arrays(split, _ARRAYS, path)


def load_split(path: Path) -> Split:
    """Read a split written by `save_split`."""
    return Split(*load_arrays(path, _ARRAYS, "a preprocessed split"))


def save_words(words: Words, path: Path) -> None:
    """Write a split's words as an .npz that numpy reads with allow_pickle=False."""
    save_arrays(words, _WORDS_ARRAYS, path)


def load_words(path: Path) -> Words:
    """Read a split's words written by `save_words`."""
    return Words(*load_arrays(path, _WORDS_ARRAYS, "a split's words from preprocess"))


def save_fit_words(words: list[str], folder: Path) -> None:
    """The fit reviews' words (`number_words`' spelling), beside the splits' words: word n on
    line n."""
    (folder / FIT_WORDS_FILE).write_text("".join(f"{word}\n" for word in words), encoding="utf-8")


def load_fit_words(folder: Path, distinct: int) -> list[str]:
    """The words `save_fit_words` wrote, checked to be the `distinct` words the splits number."""
    path = folder / FIT_WORDS_FILE
    if not path.is_file():
        raise PipelineError(f"{path} is missing: run `dvc repro preprocess`")
    words = path.read_text(encoding="utf-8").splitlines()
    if len(words) != distinct:
        raise PipelineError(
            f"{path} holds {len(words):,} words where the splits number {distinct:,}: "
            "run `dvc repro preprocess`"
        )
    return words


def save_vocabulary(vocabulary: list[str], path: Path) -> None:
    """One word per line; line i holds the word with id i + 2."""
    path.write_text("".join(f"{word}\n" for word in vocabulary), encoding="utf-8")


def load_vocabulary(path: Path) -> list[str]:
    """Read a vocabulary written by `save_vocabulary`."""
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `dvc repro preprocess` first")
    return path.read_text(encoding="utf-8").splitlines()


def save_labels(labels: list[str], path: Path) -> None:
    """One label name per line, in the labels' order."""
    path.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")


def load_labels(data: Path) -> list[str]:
    """The label names preprocess wrote beside the splits; label i of a split is names[i]."""
    path = data / LABELS_FILE
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `dvc repro preprocess` first")
    return path.read_text(encoding="utf-8").splitlines()


def embedding_rows(data: Path) -> int:
    """The token ids a model over preprocess's output needs: its words plus padding and unknown.

    At most the vocab_size param, fewer when the training reviews hold fewer words.
    """
    return len(load_vocabulary(data / VOCABULARY_FILE)) + FIRST_WORD_ID


def split_statistics(
    split: Split, max_length: int, label_names: list[str] | None = None
) -> dict[str, float | int | dict]:
    """Sizes, label balance, lengths and the share of reviews cut short, for a human and
    `dvc metrics diff`: with two labels the positive label's share, with more each label's."""
    lengths = split.lengths
    kept_tokens = np.minimum(lengths, max_length).sum()
    names = label_names or ["negative", "positive"]
    if len(names) == 2:
        balance = {"positive_share": round(float(split.labels.mean()), 4) if len(split) else 0.0}
    else:
        balance = {
            "label_shares": {
                name: round(float(np.mean(split.labels == index)), 4) if len(split) else 0.0
                for index, name in enumerate(names)
            }
        }
    return {
        "reviews": len(split),
        **balance,
        "median_tokens": float(np.median(lengths)) if len(split) else 0.0,
        "p95_tokens": float(np.percentile(lengths, 95)) if len(split) else 0.0,
        "truncated_share": round(float((lengths > max_length).mean()), 4) if len(split) else 0.0,
        # share of the kept (not truncated) tokens that fell outside the vocabulary
        "oov_share": round(float((split.token_ids == 1).sum() / max(int(kept_tokens), 1)), 4),
    }
