"""A user's own labelled text: CSV, TSV, JSON Lines or Parquet files, read with pandas and checked.

A dataset path is one file (the training reviews; the test split is then carved from it) or a
folder holding train.* and optionally test.* and validation.*, used as given. Every problem is
found before any work and named in one line with its fix: a missing path or column, an unknown
format, blank texts or labels, text that is not UTF-8, a single label, a test label the training
reviews never have.
"""

from __future__ import annotations

from pathlib import Path

from sentiment.classifier.data.reviews import DataError

# file suffix -> format
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SPLIT_FILES = ("train", "validation", "test")
ERRORS_SHOWN = 5  # rows named in an error about many rows

Table = tuple[list[str], list[str]]  # (texts, labels as text), row by row


def dataset_files(dataset: str, root: Path = Path(".")) -> dict[str, Path]:
    """{split: file} of a dataset path: a file is the train split; a folder gives train.* and
    whichever of validation.* and test.* it holds."""
    path = root / dataset
    if not path.exists():
        raise DataError(
            f"dataset {dataset} does not exist: give a data file ({_suffixes()}) or a folder of "
            "train.* (and test.*, validation.*) files, tracked with `dvc add`"
        )
    if path.is_file():
        file_format(path)
        return {"train": path}
    found: dict[str, Path] = {}
    for split in SPLIT_FILES:
        candidates = sorted(p for p in path.glob(f"{split}.*") if p.suffix in FORMATS)
        if len(candidates) > 1:
            names = ", ".join(p.name for p in candidates)
            raise DataError(f"{path} holds {names}: keep one {split} file")
        if candidates:
            found[split] = candidates[0]
    if "train" not in found:
        raise DataError(
            f"{path} holds no train file (train.csv, train.tsv, train.jsonl or train.parquet): "
            "name the training reviews' file train.*"
        )
    return found


def _suffixes() -> str:
    return ", ".join(FORMATS)


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(
            f"{path} has an unknown format {path.suffix or '(no suffix)'}: give a {_suffixes()} "
            "file"
        ) from None


def check_utf8(path: Path) -> None:
    """Text formats must be UTF-8; the error names the line and how to convert."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{path} is not UTF-8 text (line {line}, byte {error.start}): convert it, e.g. "
            f"`iconv -f latin1 -t utf-8 {path} > converted{path.suffix}`"
        ) from None


def read_table(path: Path, *, text_column: str, label_column: str | None) -> Table:
    """The texts and labels (as text) of one data file, every row checked; with no
    label_column, the texts alone (and no labels)."""
    import pandas as pd

    kind = file_format(path)
    if kind != "parquet":
        check_utf8(path)
    try:
        if kind in ("csv", "tsv"):
            # Every field as text, nothing read as missing: a label "NA" stays "NA".
            frame = pd.read_csv(
                path,
                sep="," if kind == "csv" else "\t",
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",  # a byte-order mark is not part of the first column's name
            )
        elif kind == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
        else:
            frame = pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        detail = (str(error).splitlines() or [error.__class__.__name__])[0]
        raise DataError(
            f"{path} is not a readable {kind} file ({detail}): fix or re-export it"
        ) from None
    for key, column in (("text_column", text_column), ("label_column", label_column)):
        if column is not None and column not in frame.columns:
            present = ", ".join(map(str, frame.columns)) or "none"
            raise DataError(f"{path} has no column {column!r} (its columns: {present}): set {key}")
    texts = [_as_text(value) for value in frame[text_column].tolist()]
    labels = [] if label_column is None else [_as_text(v) for v in frame[label_column].tolist()]
    checked = [("texts", texts, text_column)]
    if label_column is not None:
        checked.append(("labels", labels, label_column))
    for what, values, column in checked:
        blank = [row for row, value in enumerate(values, start=1) if not value.strip()]
        if blank:
            shown = ", ".join(map(str, blank[:ERRORS_SHOWN])) + (", ..." if len(blank) > 5 else "")
            raise DataError(
                f"{path} has {len(blank):,} blank {what} in column {column!r} (data rows "
                f"{shown}, counted from 1): fill or remove those rows"
            )
    return texts, labels


def _as_text(value: object) -> str:
    """A cell as text: None and NaN (missing in JSON Lines or Parquet) become blank."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 from a column pandas read as floats is the label 1
    return str(value)


def label_order(found: list[str], listed: list[str], *, where: str) -> list[str]:
    """The labels in their defined order: the `labels` param's, else sorted (numbers by value)."""
    present = sorted(set(found), key=_label_key)
    if len(present) < 2:
        raise DataError(
            f"every review of {where} has the label {present[0]!r}: a classifier needs two "
            "labels or more"
        )
    if listed:
        unlisted = [label for label in present if label not in listed]
        if unlisted:
            raise DataError(
                f"{where} has labels the labels param does not list: {', '.join(unlisted)}: "
                "add them to labels, or set labels: '' (the data's, sorted)"
            )
        absent = [label for label in listed if label not in present]
        if absent:
            raise DataError(
                f"labels lists {', '.join(absent)}, which no review of {where} has: remove "
                "them from labels"
            )
        return list(listed)
    return present


def _label_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
