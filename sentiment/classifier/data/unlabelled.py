"""Unlabelled text beside the labelled reviews: IMDB's 50,000 unlabelled reviews or the user's own.

The `unlabelled` param names the source: none (the default), imdb, or a path in the repository:
a file of texts (.txt, one text per line; or a .csv, .tsv, .jsonl or .parquet file's
text_column) or a folder of .txt files, one text each (IMDB's aclImdb/train/unsup/ layout).

The texts are checked like the labelled reviews (IMDB's by count and content fingerprint; a
user's for blank texts, text that is not UTF-8, a missing column) and never join any split. They
are de-duplicated against every labelled split and against themselves: an unlabelled text that is
also a test review would let the network learn from the test split's text. What was read, what
was dropped and why, and what was kept is counted in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentiment.classifier.data.files import (
    ERRORS_SHOWN,
    FORMATS,
    check_utf8,
    file_format,
    read_table,
)
from sentiment.classifier.data.imdb import check_imdb_unlabelled, fetch_imdb_unlabelled
from sentiment.classifier.data.reviews import (
    MANIFEST,
    UNLABELLED_TEXTS,
    VALIDATION,
    DataError,
    Reviews,
    text_fingerprint,
    write_texts,
)
from sentiment.files import write_json

NONE = "none"
TEXT_SUFFIX = ".txt"
# The order a repeated labelled text is counted in: a text in two splits counts for the first.
LABELLED_ORDER = ("test", VALIDATION, "train")


@dataclass(frozen=True)
class Unlabelled:
    """The unlabelled texts kept (in canonical order), where they came from, and the counts."""

    texts: list[str]
    source: str
    read: int
    fingerprint: str  # of the texts as read, before any was dropped
    repeating_labelled: dict[str, int]  # split -> texts dropped for being one of its reviews
    repeating_itself: int  # texts dropped for repeating an earlier unlabelled text

    def manifest(self, unlabelled: str) -> dict:
        """What the unlabelled stage proves about its output."""
        return {
            "unlabelled": unlabelled,
            "read": self.read,
            "fingerprint": self.fingerprint,
            "dropped": {
                "repeating_labelled": self.repeating_labelled,
                "repeating_itself": self.repeating_itself,
            },
            "kept": len(self.texts),
            "kept_fingerprint": text_fingerprint(self.texts),
        }

    def summary(self) -> str:
        """One line: read, dropped and kept."""
        if not self.read:
            return "none"
        repeats = ", ".join(
            f"{count:,} {split}" for split, count in self.repeating_labelled.items()
        )
        return (
            f"{self.source}: {self.read:,} texts read; dropped as repeats of labelled reviews: "
            f"{repeats or 'none'}; of each other: {self.repeating_itself:,}; "
            f"{len(self.texts):,} kept"
        )


def get_unlabelled(
    unlabelled: str,
    *,
    text_column: str,
    labelled: dict[str, Reviews],
    mirror: str | None = None,
    labelled_mirror: str | None = None,
    root: Path = Path("."),
) -> Unlabelled:
    """The unlabelled source's texts, checked and de-duplicated against `labelled` (download's
    splits) and themselves."""
    if unlabelled == NONE:
        return Unlabelled([], NONE, 0, text_fingerprint([]), {}, 0)
    if unlabelled == "imdb":
        texts, source = fetch_imdb_unlabelled(mirror=mirror, labelled_mirror=labelled_mirror)
        check_imdb_unlabelled(texts)
    else:
        texts, source = read_own_texts(unlabelled, text_column=text_column, root=root), unlabelled
    return deduplicated(texts, labelled, source=source, where=unlabelled)


def deduplicated(texts: list[str], labelled: dict[str, Reviews], *, source: str, where: str):
    """An Unlabelled of `texts` less those that are labelled reviews or repeat an earlier text."""
    if not texts:
        raise DataError(f"unlabelled {where} holds no texts: give one with text in it, or none")
    owner: dict[str, str] = {}
    for split in reversed([s for s in LABELLED_ORDER if s in labelled]):
        owner.update((text, split) for text, _ in labelled[split])  # the first split wins
    repeating = {split: 0 for split in LABELLED_ORDER if split in labelled}
    kept: set[str] = set()
    repeats = 0
    for text in texts:
        if text in owner:
            repeating[owner[text]] += 1
        elif text in kept:
            repeats += 1
        else:
            kept.add(text)
    if not kept:
        raise DataError(
            f"every one of the {len(texts):,} texts of unlabelled {where} is a labelled review: "
            "give text that is not in the labelled data, or unlabelled: none"
        )
    return Unlabelled(sorted(kept), source, len(texts), text_fingerprint(texts), repeating, repeats)


def read_own_texts(unlabelled: str, *, text_column: str, root: Path = Path(".")) -> list[str]:
    """A user's unlabelled texts: a .txt file (one per line), a data file's text_column, or a
    folder of .txt files (one text each); every blank or undecodable text refused by name."""
    path = root / unlabelled
    if not path.exists():
        raise DataError(
            f"unlabelled {unlabelled} does not exist: give a file of texts (.txt, one per line, "
            f"or the text_column of a {', '.join(FORMATS)} file) or a folder of .txt files, "
            "tracked with `dvc add`"
        )
    if path.is_dir():
        return _folder_texts(path)
    if path.suffix.lower() == TEXT_SUFFIX:
        return _line_texts(path)
    if path.suffix.lower() not in FORMATS:
        file_format(path)  # names the formats
    return read_table(path, text_column=text_column, label_column=None)[0]


def _line_texts(path: Path) -> list[str]:
    check_utf8(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    blank = [number for number, line in enumerate(lines, start=1) if not line.strip()]
    if blank:
        shown = ", ".join(map(str, blank[:ERRORS_SHOWN])) + (", ..." if len(blank) > 5 else "")
        raise DataError(
            f"{path} has {len(blank):,} blank lines (lines {shown}): one text per line, "
            "remove the blank ones"
        )
    return lines


def _folder_texts(folder: Path) -> list[str]:
    paths = sorted(folder.rglob(f"*{TEXT_SUFFIX}"))
    if not paths:
        raise DataError(
            f"{folder} holds no .txt files: give a folder of .txt files (one text each) or a file"
        )
    texts = []
    for path in paths:
        check_utf8(path)
        text = path.read_text(encoding="utf-8-sig").strip()
        if not text:
            raise DataError(f"{path} is blank: remove it or give it its text")
        texts.append(text)
    return texts


def write_unlabelled(found: Unlabelled, unlabelled: str, folder: Path) -> None:
    """The kept texts as JSON lines (canonical order) and the manifest."""
    write_texts(found.texts, folder / UNLABELLED_TEXTS)
    write_json(folder / MANIFEST, found.manifest(unlabelled))
