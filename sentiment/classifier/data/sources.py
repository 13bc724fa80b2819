"""Where a dataset's reviews come from: the `dataset` param's sources, put in one form.

Whatever the source, the result is a Dataset: reviews by split (train and test, and validation
when the data gives one), each labelled by its label's index in `labels`, the defined order of the
label names. With two labels, index 1 is the positive one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sentiment.classifier.data.files import dataset_files, label_order, read_table
from sentiment.classifier.data.imdb import check_imdb, fetch_imdb
from sentiment.classifier.data.reviews import LABEL_NAMES, DataError, Reviews, fingerprint
from sentiment.classifier.data.splits import carve_split, check_stratifiable
from sentiment.classifier.data.synthetic import grade_names, make_synthetic, make_synthetic_graded
from sentiment.params import label_list

# The test split carved from a single data file draws from its own stream of the seed, apart
# from the validation split's.
TEST_CARVE_STREAM = 1


@dataclass(frozen=True)
class Dataset:
    """Reviews by split (labels are indices into `labels`), and where they came from."""

    reviews: dict[str, Reviews]
    labels: list[str]
    source: str
    files: dict[str, str]  # split -> the data file it was read from ({} for a built-in dataset)
    fingerprints: dict[str, str] = field(default_factory=dict)  # split -> fingerprint

    def __post_init__(self) -> None:
        if not self.fingerprints:  # frozen: set once, here
            prints = {split: fingerprint(reviews) for split, reviews in self.reviews.items()}
            object.__setattr__(self, "fingerprints", prints)

    def manifest(self, dataset: str) -> dict:
        """What the download stage proves about its output (not the source: bytes must not
        depend on how the same reviews arrived)."""
        return {
            "dataset": dataset,
            "labels": self.labels,
            **({"files": self.files} if self.files else {}),
            "splits": {
                split: {
                    "reviews": len(reviews),
                    "labels": {
                        name: sum(1 for _, label in reviews if label == index)
                        for index, name in enumerate(self.labels)
                    },
                    "fingerprint": self.fingerprints[split],
                }
                for split, reviews in self.reviews.items()
            },
        }


def get_dataset(
    *,
    dataset: str,
    text_column: str,
    label_column: str,
    labels: str,
    positive_label: str,
    test_split: float,
    synthetic_reviews: int,
    synthetic_labels: int,
    seed: int,
    mirror: str | None = None,
    root: Path = Path("."),
) -> Dataset:
    """The dataset's reviews, checked, with its labels in their defined order."""
    if dataset == "imdb":
        reviews, source = fetch_imdb(mirror=mirror)
        found = Dataset(reviews, list(LABEL_NAMES), source, {}, check_imdb(reviews))
    elif dataset == "synthetic":
        if synthetic_labels == 2:
            found = Dataset(make_synthetic(synthetic_reviews), list(LABEL_NAMES), "synthetic", {})
        else:
            reviews = make_synthetic_graded(synthetic_reviews, synthetic_labels)
            found = Dataset(reviews, grade_names(synthetic_labels), "synthetic", {})
    else:
        found = read_files(
            dataset,
            text_column=text_column,
            label_column=label_column,
            listed=label_list(labels),
            test_split=test_split,
            seed=seed,
            root=root,
        )
    if label_list(labels) and dataset in ("imdb", "synthetic"):
        found = _reordered(found, label_list(labels), where=dataset)
    return _with_positive(found, positive_label) if positive_label else found


def read_files(
    dataset: str,
    *,
    text_column: str,
    label_column: str,
    listed: list[str],
    test_split: float,
    seed: int,
    root: Path = Path("."),
) -> Dataset:
    """A user's data file or folder as a Dataset; without a test file the test split is carved."""
    files = dataset_files(dataset, root)
    tables = {
        split: read_table(path, text_column=text_column, label_column=label_column)
        for split, path in files.items()
    }
    train_labels = tables["train"][1]
    names = label_order(train_labels, listed, where=str(files["train"]))
    index = {name: position for position, name in enumerate(names)}
    for split, (_, split_labels) in tables.items():
        unseen = sorted(set(split_labels) - set(index))
        if unseen:
            counts = ", ".join(f"{label!r} ({split_labels.count(label)})" for label in unseen)
            raise DataError(
                f"{files[split]} has labels the training reviews never have: {counts}: remove "
                f"those reviews or add training reviews with those labels to {files['train']}"
            )
    reviews = {
        split: [(text, index[label]) for text, label in zip(*table, strict=True)]
        for split, table in tables.items()
    }
    described = {split: path.relative_to(root).as_posix() for split, path in files.items()}
    source = ", ".join(described.values())
    if "test" not in reviews:
        reviews["train"], reviews["test"] = _carve_test(
            reviews["train"], names, test_split=test_split, seed=seed, where=files["train"]
        )
        source += f" (test split carved: {test_split:g})"
    return Dataset(reviews, names, source, described)


def _carve_test(
    reviews: Reviews, names: list[str], *, test_split: float, seed: int, where: Path
) -> tuple[Reviews, Reviews]:
    labels = np.array([label for _, label in reviews])
    check_stratifiable(labels, names, share=test_split, what="test_split", where=str(where))
    kept, held_out = carve_split(labels, share=test_split, seed=[seed, TEST_CARVE_STREAM])
    return [reviews[i] for i in kept], [reviews[i] for i in held_out]


def _reordered(found: Dataset, listed: list[str], *, where: str) -> Dataset:
    """A built-in dataset's labels in the order the labels param gives."""
    order = label_order(found.labels, listed, where=where)
    new_index = {found.labels.index(name): position for position, name in enumerate(order)}
    reviews = {
        split: [(text, new_index[label]) for text, label in items]
        for split, items in found.reviews.items()
    }
    return Dataset(reviews, order, found.source, found.files)


def _with_positive(found: Dataset, positive_label: str) -> Dataset:
    """Two labels ordered so that positive_label is the second (index 1, the sigmoid's 1)."""
    if positive_label not in found.labels:
        raise DataError(
            f"positive_label {positive_label!r} is not a label of the data "
            f"({', '.join(found.labels)}): name one of them"
        )
    if len(found.labels) != 2:
        raise DataError(
            f"positive_label is for two labels and the data has {len(found.labels)} "
            f"({', '.join(found.labels)}): set positive_label: '' (more are scored one-vs-rest)"
        )
    negative = next(name for name in found.labels if name != positive_label)
    return _reordered(found, [negative, positive_label], where="the data")
