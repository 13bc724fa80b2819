"""IMDB's labelled reviews, from tensorflow-datasets or a local mirror (archive or folder), checked.

The reviews are proven to be IMDB's (counts, balance, content fingerprint) however they came, so
the download stage writes the same bytes whichever way IMDB arrived.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from sentiment.classifier.data.reviews import (
    SPLITS,
    DataError,
    Reviews,
    fingerprint,
    text_fingerprint,
)

MIRROR_ENV = "IMDB_MIRROR"
# The mirror as a local setting: a git-ignored file in the repository's root holding its path.
# DVC's queue workers do not see an IMDB_MIRROR exported when an experiment is queued (only the
# environment of the `dvc queue start` that spawned them), but every stage DVC runs, queued ones
# included, gets DVC_ROOT: the root of the repository the experiment belongs to, where this is.
MIRROR_SETTING = "imdb_mirror.local"
# IMDB's 50,000 unlabelled reviews (the `unlabelled: imdb` param) from a local copy, set the same
# two ways. Without one, the labelled mirror is read for them (aclImdb_v1.tar.gz holds both).
UNLABELLED_MIRROR_ENV = "IMDB_UNLABELLED_MIRROR"
UNLABELLED_MIRROR_SETTING = "imdb_unlabelled_mirror.local"
# Where tensorflow-datasets fetches IMDB from; probed before tfds would retry for minutes.
TFDS_ORIGIN = ("ai.stanford.edu", 80)

IMDB_REVIEWS_PER_SPLIT = 25_000
# sha256 of the canonical records of IMDB's labelled reviews (see `fingerprint`), measured on
# aclImdb_v1.tar.gz; tensorflow-datasets yields the same texts (file bytes, whitespace-stripped).
IMDB_FINGERPRINTS = {
    "train": "1d640f484f6096e2ec80ed2a43373da71c13bd583429529183916ff744d0536a",
    "test": "623af64c8fb0c01fdce1c731af429ae0064dad6f67affc5dd58eca05b488d189",
}

IMDB_UNLABELLED_REVIEWS = 50_000
# sha256 of the sorted unlabelled texts (`text_fingerprint`), measured on the original archive's
# aclImdb/train/unsup/ (whitespace-stripped file bytes, as the labelled reviews).
IMDB_UNLABELLED_FINGERPRINT = "85a5ee9cd4898fc4f48729a2a7d5cf003056e66f3f1d460bb2af2615817c3763"

_MEMBER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/[^/]+\.txt$")
_UNLABELLED_MEMBER = re.compile(r"^(?:\./)?aclImdb/train/unsup/[^/]+\.txt$")


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


T = TypeVar("T")

_BLOCK = 512  # a tar header, and the unit file contents are padded to
_FILE_TYPES = (b"0", b"\0")  # a regular file's type flag (ustar and pre-POSIX)
_PAX_TYPES = (b"g", b"x")  # pax headers: global, and for the next member
_PLAIN_TYPES = (*_FILE_TYPES, b"5", *_PAX_TYPES)  # b"5": a folder


class _NotPlain(Exception):
    """A tar archive the plain reader leaves to tarfile: any member beyond ustar's regular files
    and folders (pax headers only as comments), a number in base 256, a header that fails its
    checksum, a truncated stream."""


def _octal(field: bytes) -> int | None:
    """A header's octal number; None if it is anything else (empty, base 256, garbage)."""
    digits = field.strip(b"\0 ")
    if not digits or digits.strip(b"01234567"):
        return None
    return int(digits, 8)


def _pax_keys(records: bytes) -> set[str]:
    """The keys of a pax header's records ("<length> <key>=<value>\\n" each)."""
    keys, start = set(), 0
    while start < len(records):
        length, _, rest = records[start:].partition(b" ")
        if not length.isdigit() or int(length) <= 0:
            raise _NotPlain("pax")
        keys.add(rest.split(b"=", 1)[0].decode("utf-8", "replace"))
        start += int(length)
    return keys


def _plain_members(stream) -> Iterator[tuple[str, bytes | None]]:
    """(name, contents) of each member of an uncompressed ustar tar stream, contents None for a
    folder, read header by header: the archives IMDB ships, several times faster than tarfile.
    Raises _NotPlain at anything else."""
    while True:
        header = stream.read(_BLOCK)
        if len(header) < _BLOCK:
            raise _NotPlain("truncated")
        if not header.strip(b"\0"):
            return  # the end-of-archive blocks
        summed = sum(header[:148]) + 8 * 32 + sum(header[156:])  # the checksum field as spaces
        kind, size = header[156:157], _octal(header[124:136])
        if _octal(header[148:156]) != summed or kind not in _PLAIN_TYPES or size is None:
            raise _NotPlain("header")
        name = header[:100].split(b"\0", 1)[0]
        prefix = header[345:500].split(b"\0", 1)[0]
        if prefix:  # ustar's long names, as tarfile reads them
            name = prefix + b"/" + name
        contents = stream.read(size)
        stream.read(-size % _BLOCK)  # the padding to the next header
        if len(contents) < size:
            raise _NotPlain("truncated")
        if kind in _PAX_TYPES:
            if _pax_keys(contents) - {"comment"}:
                raise _NotPlain("pax")  # a path, a size, ...: tarfile applies them
            continue  # a comment (git archive's commit id) changes no member
        try:
            decoded = name.decode("utf-8")
        except UnicodeDecodeError:
            raise _NotPlain("name") from None
        yield decoded, (contents if kind in _FILE_TYPES else None)


def _tarfile_members(archive: Path) -> Iterator[tuple[str, bytes | None]]:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            contents = tar.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            yield member.name, contents


def _reviews_of(members: Iterable[tuple[str, bytes | None]], archive: Path) -> dict[str, Reviews]:
    reviews: dict[str, Reviews] = {split: [] for split in SPLITS}
    for name, contents in members:
        _check_member_name(name, archive)
        match = _MEMBER.match(name)
        if not match or contents is None:
            continue
        split, label = match.groups()
        reviews[split].append((_review_text(contents, name), int(label == "pos")))
    return reviews


def _read_archive(archive: Path, collect: Callable[[Iterable[tuple[str, bytes | None]]], T]) -> T:
    """What `collect` makes of an aclImdb tar archive's members, without extracting it to disk.

    A gzipped or plain ustar archive of files and folders (IMDB's own) is read header by
    header; any other archive, or one that is damaged, by tarfile, which names the damage.
    """
    try:
        with archive.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(archive, "rb") as stream:
            return collect(_plain_members(stream))
    except (_NotPlain, EOFError, zlib.error, OSError):
        pass  # tarfile reads it, or says what is wrong with it
    try:
        return collect(_tarfile_members(archive))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        detail = (str(error).splitlines() or [""])[0].rstrip(":")
        raise DataError(
            f"{archive} is not a readable tar archive ({error.__class__.__name__}: {detail}): "
            "it is corrupt or truncated, download aclImdb_v1.tar.gz again"
        ) from None


def read_archive(archive: Path) -> dict[str, Reviews]:
    """Labelled reviews from an aclImdb tar archive."""
    return _read_archive(archive, lambda members: _reviews_of(members, archive))


def read_unlabelled_archive(archive: Path) -> list[str]:
    """The unlabelled reviews (aclImdb/train/unsup/*.txt) of an aclImdb tar archive."""
    return _read_archive(archive, lambda members: _unlabelled_of(members, archive))


def _unlabelled_of(members: Iterable[tuple[str, bytes | None]], archive: Path) -> list[str]:
    texts = []
    for name, contents in members:
        _check_member_name(name, archive)
        if contents is not None and _UNLABELLED_MEMBER.match(name):
            texts.append(_review_text(contents, name))
    return texts


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
    return _local_path(environ, MIRROR_ENV, MIRROR_SETTING)


def unlabelled_mirror_from_environment(environ: Mapping[str, str] = os.environ) -> str | None:
    """The local copy of IMDB's unlabelled reviews: IMDB_UNLABELLED_MIRROR if set, else the path
    in DVC_ROOT's imdb_unlabelled_mirror.local (read as imdb_mirror.local is)."""
    return _local_path(environ, UNLABELLED_MIRROR_ENV, UNLABELLED_MIRROR_SETTING)


def _local_path(environ: Mapping[str, str], variable: str, setting_name: str) -> str | None:
    if environ.get(variable):
        return environ[variable]
    setting = Path(environ.get("DVC_ROOT", ".")) / setting_name
    if not setting.is_file():
        return None
    path = setting.read_text(encoding="utf-8").strip()
    return str((setting.parent / path).resolve()) if path else None


def read_unlabelled_mirror(mirror: Path, variable: str = UNLABELLED_MIRROR_ENV) -> list[str]:
    """IMDB's unlabelled reviews from a local copy: an archive or extracted folder holding
    aclImdb/train/unsup/*.txt (aclImdb_v1.tar.gz does; so does an unlabelled-only archive)."""
    if not mirror.exists():
        raise DataError(
            f"{variable}={mirror} does not exist: point it at aclImdb_v1.tar.gz (or an archive of "
            "its aclImdb/train/unsup/ reviews)"
        )
    if mirror.is_file():
        return read_unlabelled_archive(mirror)
    root = mirror / "aclImdb" if (mirror / "aclImdb").is_dir() else mirror
    paths = sorted((root / "train" / "unsup").glob("*.txt"))
    return [_review_text(path.read_bytes(), str(path)) for path in paths]


def read_tfds_unlabelled(data_dir: str | None = None, download: bool = True) -> list[str]:
    """IMDB's unlabelled reviews: tensorflow-datasets' `imdb_reviews` split `unsupervised`."""
    import tensorflow_datasets as tfds  # heavy: imported only on this path

    examples = tfds.load(
        "imdb_reviews",
        split="unsupervised",
        as_supervised=True,
        data_dir=data_dir,
        download=download,
    )
    return [
        _review_text(text, "a tensorflow-datasets review") for text, _ in tfds.as_numpy(examples)
    ]


def fetch_imdb_unlabelled(
    *,
    mirror: str | None = None,
    labelled_mirror: str | None = None,
    tfds_data_dir: str | None = None,
    origin: tuple[str, int] = TFDS_ORIGIN,
) -> tuple[list[str], str]:
    """IMDB's 50,000 unlabelled reviews and a word on where they came from.

    Order: the unlabelled mirror if one is named; the labelled mirror if it holds them (the
    original aclImdb_v1.tar.gz does); tensorflow-datasets' own copy if prepared; a download if
    the network answers; otherwise fail at once naming the fixes.
    """
    if mirror:
        return read_unlabelled_mirror(Path(mirror)), f"mirror {mirror}"
    if labelled_mirror:
        texts = read_unlabelled_mirror(Path(labelled_mirror), MIRROR_ENV)
        if texts:
            return texts, f"mirror {labelled_mirror}"
    if tfds_is_prepared(tfds_data_dir):
        return read_tfds_unlabelled(tfds_data_dir, download=False), "tensorflow-datasets cache"
    if network_reaches(origin):
        return read_tfds_unlabelled(tfds_data_dir), "tensorflow-datasets download"
    where = f"{labelled_mirror} holds no aclImdb/train/unsup/ and " if labelled_mirror else ""
    raise DataError(
        f"cannot get IMDB's unlabelled reviews: {where}{origin[0]} is unreachable. Set "
        f"{UNLABELLED_MIRROR_ENV}=/path/to/aclImdb_unsup.tar.gz (any archive or folder holding "
        f"aclImdb/train/unsup/*.txt, aclImdb_v1.tar.gz among them), or write that path in "
        f"{UNLABELLED_MIRROR_SETTING} (queued experiments read it)"
    )


def check_imdb_unlabelled(texts: list[str]) -> str:
    """Prove these are IMDB's unlabelled reviews (count, content); returns their fingerprint."""
    if len(texts) != IMDB_UNLABELLED_REVIEWS:
        raise DataError(
            f"the source holds {len(texts):,} unlabelled reviews (aclImdb/train/unsup/*.txt), "
            f"IMDB has {IMDB_UNLABELLED_REVIEWS:,}: it is incomplete or not aclImdb, use the "
            "original archive"
        )
    found = text_fingerprint(texts)
    if found != IMDB_UNLABELLED_FINGERPRINT:
        raise DataError(
            f"the unlabelled reviews' content fingerprint {found[:12]}… is not IMDB's "
            f"{IMDB_UNLABELLED_FINGERPRINT[:12]}…: the source was altered, use the original archive"
        )
    return found


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
