import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest

from sentiment.classifier.data.imdb import (
    MIRROR_SETTING,
    check_imdb,
    fetch_imdb,
    mirror_from_environment,
    read_archive,
    read_folder,
    reviews_from_examples,
)
from sentiment.classifier.data.reviews import (
    DataError,
    canonical,
    fingerprint,
    read_reviews,
    write_reviews,
)
from sentiment.classifier.data.synthetic import make_synthetic
from tests.conftest import PROJECT_ROOT, make_aclimdb_archive, write_params

TINY = {
    "train": [("A wonderful film.", 1), ("  Dull, dull, dull.\n", 0), ("Great<br />fun", 1)],
    "test": [("Awful acting.", 0), ("Loved it", 1)],
}


def test_archive_reviews_are_stripped_utf8_texts_with_labels(tmp_path):
    reviews = read_archive(make_aclimdb_archive(tmp_path / "imdb.tar.gz", TINY))
    assert sorted(reviews["train"]) == sorted(
        [("A wonderful film.", 1), ("Dull, dull, dull.", 0), ("Great<br />fun", 1)]
    )
    assert len(reviews["test"]) == 2


def test_folder_and_archive_give_the_same_fingerprint(tmp_path):
    archive = make_aclimdb_archive(tmp_path / "imdb.tar.gz", TINY)
    from_archive = read_archive(archive)
    extract = tmp_path / "extracted"
    subprocess.run(["tar", "-xzf", archive, "-C", extract.mkdir() or extract], check=True)
    from_folder = read_folder(extract)
    for split in ("train", "test"):
        assert fingerprint(from_folder[split]) == fingerprint(from_archive[split])


def test_tfds_examples_read_like_the_archive():
    examples = [(b"  Loved it\n", 1), (b"Awful acting.", 0)]  # tfds keeps raw file bytes
    assert fingerprint(reviews_from_examples(examples)) == fingerprint(TINY["test"])


def test_fingerprint_ignores_order_but_not_labels_or_text():
    reviews = TINY["train"]
    assert fingerprint(reviews) == fingerprint(list(reversed(reviews)))
    flipped = [(text, 1 - label) for text, label in reviews]
    assert fingerprint(flipped) != fingerprint(reviews)
    assert fingerprint([*reviews[:2], ("Great<br />fun!", 1)]) != fingerprint(reviews)


def test_written_reviews_are_byte_identical_whatever_the_input_order(tmp_path):
    write_reviews(TINY["train"], tmp_path / "a.jsonl")
    write_reviews(list(reversed(TINY["train"])), tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert read_reviews(tmp_path / "a.jsonl") == canonical(TINY["train"])


def test_a_small_archive_is_not_taken_for_imdb(tmp_path):
    reviews = read_archive(make_aclimdb_archive(tmp_path / "imdb.tar.gz", TINY))
    with pytest.raises(DataError, match="the train split has 3 labelled reviews, IMDB has 25,000"):
        check_imdb(reviews)


def test_an_archive_missing_a_split_is_refused_naming_it(tmp_path):
    archive = make_aclimdb_archive(tmp_path / "imdb.tar.gz", {"train": TINY["train"]})
    with pytest.raises(DataError, match="the source holds no test reviews"):
        check_imdb(read_archive(archive))


def test_an_archive_laid_out_otherwise_is_refused(tmp_path):
    members = {"imdb/train/pos/0_9.txt": b"Great.", "imdb/test/neg/0_1.txt": b"Awful."}
    archive = make_aclimdb_archive(tmp_path / "imdb.tar.gz", {}, **members)
    with pytest.raises(DataError, match=r"no aclImdb/train/pos/\*\.txt.*not laid out like"):
        check_imdb(read_archive(archive))


@pytest.mark.parametrize(
    "tar_format", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
)
@pytest.mark.parametrize("compression", ["gz", ""])
def test_the_header_reader_reads_archives_as_tarfile_does(tmp_path, tar_format, compression):
    from sentiment.classifier.data import imdb

    members = {
        "aclImdb/train/pos/0_9.txt": b"  Great fun.\n",
        "aclImdb/train/neg/1_2.txt": b"Dull.",
        "aclImdb/test/neg/3_1.txt": "Caf\u00e9 au lait, d\u00e9j\u00e0 vu.".encode(),
        "aclImdb/README": b"not a review",
    }
    if tar_format == tarfile.USTAR_FORMAT:  # past 100 characters: ustar's prefix field
        members[f"aclImdb/test/pos/{'7' * 80}_8.txt"] = b"A long name, as ustar splits it."
    archive = tmp_path / f"imdb.tar{'.gz' if compression else ''}"
    with tarfile.open(archive, f"w:{compression}", format=tar_format) as tar:
        if tar_format == tarfile.PAX_FORMAT:  # as git archive writes: a commit id, a comment
            tar.pax_headers = {"comment": "b9c80d93c70ecccf85e8988f6b7541f47c103e31"}
        folder = tarfile.TarInfo("aclImdb/train")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    opener = gzip.open if compression else open
    with opener(archive, "rb") as stream:
        read = list(imdb._plain_members(stream))  # no fallback: the reader takes all of them
    assert [(name, data) for name, data in read if data is not None] == list(members.items())
    by_tarfile = imdb._reviews_of(imdb._tarfile_members(archive), archive)
    assert read_archive(archive) == by_tarfile
    assert len(by_tarfile["train"]) == 2 and len(by_tarfile["test"]) == len(members) - 3


def test_an_archive_the_header_reader_leaves_is_read_by_tarfile(tmp_path):
    from sentiment.classifier.data import imdb

    archive = tmp_path / "imdb.tar.gz"
    long = f"aclImdb/train/pos/{'9' * 120}_10.txt"  # no ustar split: a pax path record
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((long, b"Superb."), ("aclImdb/test/neg/0_1.txt", b"Awful.")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with gzip.open(archive, "rb") as stream, pytest.raises(imdb._NotPlain):
        list(imdb._plain_members(stream))
    assert read_archive(archive) == {"train": [("Superb.", 1)], "test": [("Awful.", 0)]}


def _ustar(name: bytes, data: bytes, kind: bytes = b"0") -> bytes:
    header = bytearray(512)
    header[: len(name)] = name
    header[100:108] = b"0000644\0"
    header[124:136] = b"%011o\0" % len(data)
    header[156:157] = kind
    header[257:265] = b"ustar\x0000"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + data + b"\0" * (-len(data) % 512)


@pytest.mark.parametrize(
    "members",
    [
        [(b"aclImdb/train/pos/0_9.txt", b"Great.", b"0")],  # the reader's own case
        [(b"comment", b"52 comment=b9c80d93c70ecccf85e8988f6b7541f47c103e31\n", b"x")],
        [(b"aclImdb/train/caf\xe9.txt", b"not UTF-8 as a name", b"0")],
        [(b"link", b"", b"2")],
    ],
    ids=["plain", "pax-comment", "latin-1-name", "symlink"],
)
def test_hand_made_tar_members_read_as_tarfile_reads_them(tmp_path, members):
    from sentiment.classifier.data import imdb

    reviews = [(b"aclImdb/test/neg/1_2.txt", b"Awful.", b"0")]
    archive = tmp_path / "hand.tar"
    archive.write_bytes(b"".join(_ustar(*member) for member in members + reviews) + b"\0" * 1024)
    assert read_archive(archive) == imdb._reviews_of(imdb._tarfile_members(archive), archive)
    damaged = bytearray(archive.read_bytes())
    damaged[0] ^= 1  # a checksum that no longer adds up: tarfile says so
    archive.write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="is not a readable tar archive"):
        read_archive(archive)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_archive_gets_a_clear_error(tmp_path, damage):
    archive = make_aclimdb_archive(tmp_path / "imdb.tar.gz", TINY)
    data = archive.read_bytes()
    archive.write_bytes(os.urandom(2048) if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(
        DataError, match=r"is not a readable tar archive.*download aclImdb_v1\.tar\.gz again"
    ):
        read_archive(archive)


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "aclImdb/../../evil.txt"])
def test_archive_members_escaping_the_folder_are_refused(tmp_path, name):
    archive = make_aclimdb_archive(tmp_path / "imdb.tar.gz", TINY, **{name: b"x"})
    with pytest.raises(DataError, match="unsafe member path"):
        read_archive(archive)


def test_without_network_or_mirror_the_download_fails_fast_naming_both_fixes(tmp_path):
    started = time.monotonic()
    with pytest.raises(DataError) as error:
        # port 9 on loopback (discard) is closed here: the probe is refused at once
        fetch_imdb(mirror=None, tfds_data_dir=str(tmp_path), origin=("127.0.0.1", 9))
    assert time.monotonic() - started < 30
    assert "Connect to the internet" in str(error.value)
    assert "IMDB_MIRROR=" in str(error.value)


def test_synthetic_reviews_are_deterministic_and_balanced():
    first, second = make_synthetic(200), make_synthetic(200)
    assert first == second
    for split in ("train", "test"):
        assert len(first[split]) == 200
        assert sum(label for _, label in first[split]) == 100
    assert first["train"] != first["test"]


def test_synthetic_reviews_carry_negation_and_late_turns():
    reviews = make_synthetic(300)["train"]
    negated = [(text, label) for text, label in reviews if " not terrible" in text]
    late = [(text, label) for text, label in reviews if "in the end it was great." in text]
    assert negated and all(label == 1 for _, label in negated)
    assert late and all(label == 1 for _, label in late)


def test_download_stage_error_is_one_line_and_leaves_no_output(tmp_path):
    archive = make_aclimdb_archive(tmp_path / "imdb.tar.gz", TINY)
    params = write_params(tmp_path / "params.yaml")
    output = tmp_path / "raw"
    result = subprocess.run(
        [sys.executable, "-m", "stages.download", "--output", output, "--params", params],
        cwd=PROJECT_ROOT,
        env=os.environ | {"IMDB_MIRROR": str(archive)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: the train split has 3 labelled reviews")
    assert not output.exists() and not list(tmp_path.glob(".raw*"))


def test_download_stage_writes_synthetic_reviews_and_their_manifest(tmp_path):
    params = write_params(tmp_path / "params.yaml", dataset="synthetic", synthetic_reviews=50)
    output = tmp_path / "raw"
    subprocess.run(
        [sys.executable, "-m", "stages.download", "--output", output, "--params", params],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["splits"]["train"] == {
        "reviews": 50,
        "labels": {"negative": 25, "positive": 25},
        "fingerprint": fingerprint(make_synthetic(50)["train"]),
    }
    assert len(read_reviews(output / "test.jsonl")) == 50


def test_imdb_mirror_in_the_environment_wins_over_the_local_setting(tmp_path):
    (tmp_path / MIRROR_SETTING).write_text("/data/setting.tar.gz\n")
    environ = {"IMDB_MIRROR": "/data/exported.tar.gz", "DVC_ROOT": str(tmp_path)}
    assert mirror_from_environment(environ) == "/data/exported.tar.gz"


def test_the_local_setting_is_read_from_dvc_root_relative_to_its_folder(tmp_path):
    (tmp_path / MIRROR_SETTING).write_text("mirrors/aclImdb_v1.tar.gz\n")
    expected = str((tmp_path / "mirrors/aclImdb_v1.tar.gz").resolve())
    assert mirror_from_environment({"DVC_ROOT": str(tmp_path)}) == expected


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_without_a_mirror_or_a_setting_naming_one_there_is_no_mirror(tmp_path, content):
    if content is not None:
        (tmp_path / MIRROR_SETTING).write_text(content)
    assert mirror_from_environment({"DVC_ROOT": str(tmp_path)}) is None
