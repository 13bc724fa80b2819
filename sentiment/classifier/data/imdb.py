"""IMDB's labelled reviews, from tensorflow-datasets or a local mirror (archive or folder), checked.

The reviews are proven to be IMDB's (counts, balance, content fingerprint) however they came, so
the download stage writes the same bytes whichever way IMDB arrived.
"""

from __future__ import annotations

import os
import re
import socket
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from sentiment.classifier.data.reviews import SPLITS, DataError, Reviews, fingerprint

MIRROR_ENV = "IMDB_MIRROR"
# The mirror as a local setting: a git-ignored file in the repository's root holding its path.
# DVC's queue workers do not see an IMDB_MIRROR exported when an experiment is queued (only the
# environment of the `dvc queue start` that spawned them), but every stage DVC runs, queued ones
# included, gets DVC_ROOT: the root of the repository the experiment belongs to, where this is.
MIRROR_SETTING = "imdb_mirror.local"
# Where tensorflow-datasets fetches IMDB from; probed before tfds would retry for minutes.
TFDS_ORIGIN = ("ai.stanford.edu", 80)

IMDB_REVIEWS_PER_SPLIT = 25_000
# sha256 of the canonical records of IMDB's labelled reviews (see `fingerprint`), measured on
# aclImdb_v1.tar.gz; tensorflow-datasets yields the same texts (file bytes, whitespace-stripped).
IMDB_FINGERPRINTS = {
    "train": "1d640f484f6096e2ec80ed2a43373da71c13bd583429529183916ff744d0536a",
    "test": "623af64c8fb0c01fdce1c731af429ae0064dad6f67affc5dd58eca05b488d189",
}

_MEMBER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/[^/]+\.txt$")


def _review_text(raw: bytes, where: str) -> str:
    # tensorflow-datasets keeps each file's bytes stripped of surrounding whitespace; so do we.
    try:
        return raw.strip().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(
            f"{where} is not UTF-8 text: the mirror is corrupt, re-download it"
        ) from None


def _check_member_name(name: str, archive: Path) -> None:
    if name.startswith(("/", "\\")) or ".." in Path(name).parts:
        raise DataError(
            f"{archive} holds an unsafe member path {name!r}: refusing it; use IMDB's own archive"
        )


def read_archive(archive: Path) -> dict[str, Reviews]:
    """Labelled reviews from an aclImdb tar archive, without extracting it to disk."""
    reviews: dict[str, Reviews] = {split: [] for split in SPLITS}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                _check_member_name(member.name, archive)
                match = _MEMBER.match(member.name)
                if not match or not member.isfile():
                    continue
                split, label = match.groups()
                raw = tar.extractfile(member).read()  # type: ignore[union-attr]
                reviews[split].append((_review_text(raw, member.name), int(label == "pos")))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        detail = (str(error).splitlines() or [""])[0].rstrip(":")
        raise DataError(
            f"{archive} is not a readable tar archive ({error.__class__.__name__}: {detail}): "
            "it is corrupt or truncated, download aclImdb_v1.tar.gz again"
        ) from None
    return reviews


def read_folder(folder: Path) -> dict[str, Reviews]:
    """Labelled reviews from an extracted aclImdb/ folder (or the folder that holds it)."""
    root = folder / "aclImdb" if (folder / "aclImdb").is_dir() else folder
    reviews: dict[str, Reviews] = {split: [] for split in SPLITS}
    for split in SPLITS:
        for label_name, label in (("neg", 0), ("pos", 1)):
            for path in sorted((root / split / label_name).glob("*.txt")):
                reviews[split].append((_review_text(path.read_bytes(), str(path)), label))
    return reviews


def read_mirror(mirror: Path) -> dict[str, Reviews]:
    """Labelled reviews from a local copy of IMDB: the original archive or its extracted folder."""
    if not mirror.exists():
        raise DataError(f"{MIRROR_ENV}={mirror} does not exist: point it at aclImdb_v1.tar.gz")
    return read_folder(mirror) if mirror.is_dir() else read_archive(mirror)


def reviews_from_examples(examples: Iterable[tuple[bytes, int]]) -> Reviews:
    """Reviews from tensorflow-datasets' (text bytes, label) pairs."""
    return [
        (_review_text(text, "a tensorflow-datasets review"), int(label)) for text, label in examples
    ]


def read_tfds(data_dir: str | None = None, download: bool = True) -> dict[str, Reviews]:
    """Labelled reviews through tensorflow-datasets' `imdb_reviews`."""
    import tensorflow_datasets as tfds  # heavy: imported only on this path

    splits = tfds.load(
        "imdb_reviews",
        split=list(SPLITS),
        as_supervised=True,
        data_dir=data_dir,
        download=download,
    )
    return {
        split: reviews_from_examples(tfds.as_numpy(dataset))
        for split, dataset in zip(SPLITS, splits, strict=True)
    }


def tfds_is_prepared(data_dir: str | None = None) -> bool:
    """Whether tensorflow-datasets already holds imdb_reviews on disk (no network needed)."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder("imdb_reviews", data_dir=data_dir).is_prepared()
    except Exception:  # a broken or partial tfds folder is the same as none for us
        return False


def network_reaches(address: tuple[str, int], timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to `address` opens within `timeout_s`."""
    try:
        with socket.create_connection(address, timeout=timeout_s):
            return True
    except OSError:
        return False


def fetch_imdb(
    *,
    mirror: str | None = None,
    tfds_data_dir: str | None = None,
    origin: tuple[str, int] = TFDS_ORIGIN,
) -> tuple[dict[str, Reviews], str]:
    """IMDB's labelled reviews and a word on where they came from.

    Order: a local mirror if one is named, tensorflow-datasets' own copy if prepared, a download
    if the network answers; otherwise fail at once naming both fixes.
    """
    if mirror:
        return read_mirror(Path(mirror)), f"mirror {mirror}"
    if tfds_is_prepared(tfds_data_dir):
        return read_tfds(tfds_data_dir, download=False), "tensorflow-datasets cache"
    if network_reaches(origin):
        return read_tfds(tfds_data_dir), "tensorflow-datasets download"
    raise DataError(
        f"cannot download IMDB: {origin[0]} is unreachable. Connect to the internet, or set "
        f"{MIRROR_ENV}=/path/to/aclImdb_v1.tar.gz (or its extracted aclImdb/ folder), or write "
        f"that path in {MIRROR_SETTING} (queued experiments read it)"
    )


def mirror_from_environment(environ: Mapping[str, str] = os.environ) -> str | None:
    """The local IMDB copy: IMDB_MIRROR if set, else the path in DVC_ROOT's imdb_mirror.local.

    A relative path in the setting is relative to the file's folder, so it means the same in a
    queued experiment's temporary workspace as in the repository.
    """
    if environ.get(MIRROR_ENV):
        return environ[MIRROR_ENV]
    setting = Path(environ.get("DVC_ROOT", ".")) / MIRROR_SETTING
    if not setting.is_file():
        return None
    path = setting.read_text(encoding="utf-8").strip()
    return str((setting.parent / path).resolve()) if path else None


def check_imdb(reviews: dict[str, Reviews]) -> dict[str, str]:
    """Prove these are IMDB's labelled reviews (counts, balance, content); returns fingerprints."""
    fingerprints = {}
    for split in SPLITS:  # a missing split first: it says more than a wrong count
        if not reviews.get(split):
            raise DataError(
                f"the source holds no {split} reviews (no aclImdb/{split}/pos/*.txt or "
                f"aclImdb/{split}/neg/*.txt): it is not laid out like aclImdb_v1.tar.gz, use that"
            )
    for split in SPLITS:
        split_reviews = reviews[split]
        if len(split_reviews) != IMDB_REVIEWS_PER_SPLIT:
            raise DataError(
                f"the {split} split has {len(split_reviews):,} labelled reviews, IMDB has "
                f"{IMDB_REVIEWS_PER_SPLIT:,}: the source is incomplete or not aclImdb, "
                "use the original aclImdb_v1.tar.gz"
            )
        positives = sum(label for _, label in split_reviews)
        if positives * 2 != len(split_reviews):
            raise DataError(
                f"the {split} split has {positives:,} positive reviews of {len(split_reviews):,}, "
                "IMDB is balanced: use the original aclImdb_v1.tar.gz"
            )
        fingerprints[split] = fingerprint(split_reviews)
        if fingerprints[split] != IMDB_FINGERPRINTS[split]:
            raise DataError(
                f"the {split} split's content fingerprint {fingerprints[split][:12]}… is not "
                f"IMDB's {IMDB_FINGERPRINTS[split][:12]}…: the source was altered, "
                "use the original aclImdb_v1.tar.gz"
            )
    return fingerprints
