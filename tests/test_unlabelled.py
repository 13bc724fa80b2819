"""Unlabelled text: IMDB's unlabelled reviews from each source, a user's own texts in every form,
de-duplication against the labelled splits and itself, every bad source refused in one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pandas as pd
import pytest

from sentiment.classifier.data import imdb
from sentiment.classifier.data.reviews import DataError, read_unlabelled, text_fingerprint
from sentiment.classifier.data.unlabelled import (
    deduplicated,
    get_unlabelled,
    read_own_texts,
    write_unlabelled,
)
from sentiment.params import Params, ParamsError
from tests.conftest import PROJECT_ROOT, make_aclimdb_archive, write_params

LABELLED = {
    "train": [("a fine film", 1), ("a dull film", 0), ("shared by two splits", 1)],
    "test": [("the best film", 1), ("the worst film", 0), ("shared by two splits", 1)],
}
UNSUP = {f"aclImdb/train/unsup/{i}_0.txt": f"unlabelled review {i}\n".encode() for i in range(4)}


def closed_port() -> tuple[str, int]:
    """A loopback address nothing listens on: the download host, unreachable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return "127.0.0.1", sock.getsockname()[1]


def test_imdb_unlabelled_reviews_come_from_an_archive_or_its_extracted_folder(tmp_path):
    archive = make_aclimdb_archive(tmp_path / "unsup.tar.gz", {}, **UNSUP)
    texts = imdb.read_unlabelled_archive(archive)
    assert sorted(texts) == [f"unlabelled review {i}" for i in range(4)]  # stripped, as tfds does
    folder = tmp_path / "extracted" / "aclImdb" / "train" / "unsup"
    folder.mkdir(parents=True)
    for name, data in UNSUP.items():
        (folder / name.rsplit("/", 1)[1]).write_bytes(data)
    assert sorted(imdb.read_unlabelled_mirror(tmp_path / "extracted")) == sorted(texts)


def test_the_unlabelled_mirror_comes_first_then_a_labelled_mirror_that_holds_them(tmp_path):
    unlabelled = make_aclimdb_archive(tmp_path / "unsup.tar.gz", {}, **UNSUP)
    full = make_aclimdb_archive(
        tmp_path / "full.tar.gz", LABELLED, **{"aclImdb/train/unsup/9_0.txt": b"from the full one"}
    )
    texts, source = imdb.fetch_imdb_unlabelled(mirror=str(unlabelled), labelled_mirror=str(full))
    assert len(texts) == 4 and source == f"mirror {unlabelled}"
    texts, source = imdb.fetch_imdb_unlabelled(labelled_mirror=str(full))
    assert texts == ["from the full one"] and source == f"mirror {full}"


def test_with_no_source_the_error_names_each_fix_at_once(tmp_path):
    labelled_only = make_aclimdb_archive(tmp_path / "labelled.tar.gz", LABELLED)
    with pytest.raises(DataError) as error:
        imdb.fetch_imdb_unlabelled(
            labelled_mirror=str(labelled_only),
            tfds_data_dir=str(tmp_path / "tfds"),
            origin=closed_port(),
        )
    message = str(error.value)
    assert f"{labelled_only} holds no aclImdb/train/unsup/" in message
    assert "IMDB_UNLABELLED_MIRROR=/path/to/aclImdb_unsup.tar.gz" in message
    assert "imdb_unlabelled_mirror.local" in message
    with pytest.raises(DataError, match=r"IMDB_UNLABELLED_MIRROR=.*does not exist"):
        imdb.fetch_imdb_unlabelled(mirror=str(tmp_path / "missing.tar.gz"))


def test_imdb_unlabelled_reviews_are_checked_by_count_and_content(tmp_path):
    with pytest.raises(DataError, match=r"holds 4 unlabelled reviews .* IMDB has 50,000"):
        imdb.check_imdb_unlabelled(["text"] * 4)
    with pytest.raises(DataError, match=r"content fingerprint .* is not IMDB.s"):
        imdb.check_imdb_unlabelled([f"review {i}" for i in range(50_000)])


def test_a_mirror_setting_file_names_the_unlabelled_mirror_as_the_labelled_one(tmp_path):
    (tmp_path / "imdb_unlabelled_mirror.local").write_text("data/unsup.tar.gz\n")
    found = imdb.unlabelled_mirror_from_environment({"DVC_ROOT": str(tmp_path)})
    assert found == str(tmp_path / "data" / "unsup.tar.gz")
    environ = {"DVC_ROOT": str(tmp_path), "IMDB_UNLABELLED_MIRROR": "/elsewhere.tar.gz"}
    assert imdb.unlabelled_mirror_from_environment(environ) == "/elsewhere.tar.gz"


def test_texts_that_repeat_labelled_reviews_or_each_other_are_dropped_and_counted():
    texts = [
        "the best film",  # a test review
        "the best film",  # again
        "a fine film",  # a training review
        "shared by two splits",  # in both: counted for test
        "new text",
        "new text",  # a repeat of an unlabelled text
        "other text",
    ]
    found = deduplicated(texts, LABELLED, source="here", where="here")
    assert found.texts == ["new text", "other text"]
    assert found.repeating_labelled == {"test": 3, "train": 1}
    assert found.repeating_itself == 1
    assert found.read == 7 and found.fingerprint == text_fingerprint(texts)
    manifest = found.manifest("data/texts.txt")
    assert manifest["kept"] == 2 and manifest["read"] == 7
    assert manifest["dropped"] == {
        "repeating_labelled": {"test": 3, "train": 1},
        "repeating_itself": 1,
    }
    summary = found.summary()
    assert "7 texts read" in summary and "3 test, 1 train" in summary and "2 kept" in summary
    with_validation = LABELLED | {"validation": [("a fine film", 1)]}
    again = deduplicated(texts, with_validation, source="here", where="here")
    assert again.repeating_labelled == {"test": 3, "validation": 1, "train": 0}


def test_a_source_that_is_all_labelled_reviews_or_empty_is_refused():
    with pytest.raises(DataError, match="every one of the 2 texts of unlabelled x is a labelled"):
        deduplicated(["the best film", "a fine film"], LABELLED, source="x", where="x")
    with pytest.raises(DataError, match="unlabelled x holds no texts"):
        deduplicated([], LABELLED, source="x", where="x")


TEXTS = ["first text", "second text, with a comma", "third text"]


@pytest.mark.parametrize("kind", ["txt", "csv", "tsv", "jsonl", "parquet", "folder"])
def test_own_texts_in_every_form_read_the_same(tmp_path, kind):
    frame = pd.DataFrame({"body": TEXTS, "label": ["ignored", "ignored", "ignored"]})
    path = tmp_path / f"texts.{kind}"
    if kind == "txt":
        path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    elif kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif kind == "jsonl":
        frame[["body"]].to_json(path, orient="records", lines=True)  # no label column needed
    elif kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        (path / "nested").mkdir(parents=True)
        for index, text in enumerate(TEXTS):
            (path / ("nested" if index else ".") / f"{index}.txt").write_text(text + "\n")
    assert sorted(read_own_texts(path.name, text_column="body", root=tmp_path)) == TEXTS


BAD_SOURCES = {
    "missing": (None, "unlabelled missing does not exist: give a file of texts"),
    "texts.docx": (b"x", "has an unknown format .docx"),
    "blank.txt": (b"one\n\ntwo\n  \n", "has 2 blank lines (lines 2, 4): one text per line"),
    "latin1.txt": ("caf\u00e9\n".encode("latin-1"), "is not UTF-8 text (line 1"),
    "nocolumn.csv": (b"text\nhello\n", "has no column 'body' (its columns: text): set text_column"),
    "blankrow.csv": (b'body\nhello\n""\n', "has 1 blank texts in column 'body'"),
    "empty.txt": (b"", "holds no texts"),
}


@pytest.mark.parametrize("name", sorted(BAD_SOURCES))
def test_a_bad_source_is_named_in_one_line_with_its_fix(tmp_path, name):
    data, message = BAD_SOURCES[name]
    if data is not None:
        (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError) as error:
        get_unlabelled(name, text_column="body", labelled=LABELLED, root=tmp_path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_folder_without_texts_or_with_a_blank_one_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no \.txt files"):
        read_own_texts("empty", text_column="text", root=tmp_path)
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts/1.txt").write_text("words")
    (tmp_path / "texts/2.txt").write_text("  \n")
    with pytest.raises(DataError, match=r"2.txt is blank: remove it"):
        read_own_texts("texts", text_column="text", root=tmp_path)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("synthetic", "unlabelled 'synthetic' is not none or imdb nor a path inside"),
        ("/abs/texts.txt", "nor a path inside the repository"),
        ("../texts.txt", "nor a path inside the repository"),
        ("", "nor a path inside the repository"),
    ],
)
def test_an_unlabelled_param_that_names_no_source_is_refused(value, message):
    with pytest.raises(ParamsError, match=message):
        Params().replace(unlabelled=value)


def test_none_writes_no_texts_and_a_manifest_saying_so(tmp_path):
    found = get_unlabelled("none", text_column="text", labelled=LABELLED)
    write_unlabelled(found, "none", tmp_path)
    texts, manifest = read_unlabelled(tmp_path)
    assert texts == []
    assert manifest["unlabelled"] == "none" and manifest["read"] == 0 and manifest["kept"] == 0
    assert found.summary() == "none"


def _stage(tmp_path, *stage: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *stage, "--params", str(tmp_path / "params.yaml")],
        cwd=tmp_path,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": ""},
        capture_output=True,
        text=True,
    )


def test_the_stage_drops_repeats_of_synthetic_test_reviews_and_fails_in_one_line(tmp_path):
    write_params(tmp_path / "params.yaml", dataset="synthetic", synthetic_reviews=50)
    assert _stage(tmp_path, "stages.download", "--output", "raw").returncode == 0
    test_text = json.loads((tmp_path / "raw/test.jsonl").read_text().splitlines()[0])["text"]
    (tmp_path / "texts.txt").write_text(f"{test_text}\nan unlabelled text\nan unlabelled text\n")
    write_params(
        tmp_path / "params.yaml", dataset="synthetic", synthetic_reviews=50, unlabelled="texts.txt"
    )
    done = _stage(tmp_path, "stages.unlabelled", "--reviews", "raw", "--output", "out")
    assert done.returncode == 0, done.stderr
    assert "3 texts read" in done.stderr and "1 test" in done.stderr and "1 kept" in done.stderr
    assert read_unlabelled(tmp_path / "out")[0] == ["an unlabelled text"]

    (tmp_path / "texts.txt").write_text(f"{test_text}\n")
    failed = _stage(tmp_path, "stages.unlabelled", "--reviews", "raw", "--output", "out2")
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1 and "is a labelled review" in failed.stderr
    assert not (tmp_path / "out2").exists() and not list(tmp_path.glob(".out2*"))


def test_unlabelled_texts_get_the_training_vocabulary_and_those_without_words_are_left_out():
    from sentiment.classifier.data.preprocessing import unlabelled_split

    texts = ["good unknown bad", "!!!", "bad", "good " * 5]
    split = unlabelled_split(texts, ["good", "bad"], max_length=3, padding="pre", truncating="pre")
    assert split.token_ids.tolist() == [[2, 1, 3], [0, 0, 3], [2, 2, 2]]
    assert split.lengths.tolist() == [3, 1, 5] and split.labels.tolist() == [-1, -1, -1]
    empty = unlabelled_split([], ["good"], max_length=3, padding="pre", truncating="pre")
    assert empty.token_ids.shape == (0, 3) and len(empty) == 0


def test_word_vectors_learn_from_unlabelled_text_words_the_training_reviews_lack():
    import numpy as np

    from sentiment.classifier.training.word_vectors import train_word_vectors
    from tests.test_accuracy_levers import _context_corpus

    train = _context_corpus(400)  # ids 2 and 3 share contexts 10..29; id 4 has 30..49
    unlabelled = _context_corpus(400, seed=1)
    unlabelled[unlabelled == 3] = 5  # id 5 only in the unlabelled text, in 2's and 3's contexts
    alone = train_word_vectors(train, vocab_size=60, dimensions=16, seed=1)
    both = train_word_vectors(
        np.concatenate([train, unlabelled]), vocab_size=60, dimensions=16, seed=1
    )
    assert not alone[5].any() and both[5].any()
    centred = both - both[both.any(axis=1)].mean(axis=0)

    def cosine(a, b):
        return float(
            centred[a] @ centred[b] / np.linalg.norm(centred[a]) / np.linalg.norm(centred[b])
        )

    assert cosine(5, 2) > cosine(5, 4) + 0.3, (cosine(5, 2), cosine(5, 4))


@pytest.mark.slow
def test_dvc_tracks_the_texts_word2vec_and_training_read_them(tmp_path):
    from tests.conftest import dvc, make_project

    repo, run = make_project(
        tmp_path / "project",
        unlabelled="data/texts.txt",
        embedding_init="word2vec",
        virtual_adversarial=2.0,
        unlabelled_ratio=0.5,
        epochs=1,
    )
    (repo / "data").mkdir()
    texts = [f"a brilliant film number {index}" for index in range(30)]
    (repo / "data/texts.txt").write_text("\n".join(texts + texts[:5]) + "\n")
    dvc(run, "add", "-q", "data/texts.txt")
    output = dvc(run, "repro", "train")
    assert "unlabelled: data/texts.txt: 35 texts read" in output and "30 kept" in output
    assert "from 1,600 training reviews and 30 unlabelled texts" in output
    assert "train: 30 unlabelled texts, 0.5 per labelled review" in output
    statistics = json.loads((repo / "metrics/data.json").read_text())["unlabelled"]
    assert statistics["read"] == 35 and statistics["kept"] == 30 and statistics["reviews"] == 30
    assert statistics["dropped"]["repeating_itself"] == 5
    run("git", "add", "-A")
    run("git", "commit", "-qm", "with unlabelled text")

    (repo / "data/texts.txt").write_text("\n".join(texts[:20]) + "\n")
    dvc(run, "add", "-q", "data/texts.txt")
    assert "data/texts.txt" in dvc(run, "status", "unlabelled")
    rerun = dvc(run, "repro", "word_vectors")
    assert "Running stage 'unlabelled'" in rerun and "Running stage 'download'" not in rerun
    assert "and 20 unlabelled texts" in rerun


def test_project_copies_get_the_unlabelled_mirror_only_when_given(tmp_path, monkeypatch):
    from sentiment.proof.project_copy import PROJECT_FILES, project_env

    monkeypatch.setenv("IMDB_UNLABELLED_MIRROR", "/inherited.tar.gz")
    assert "IMDB_UNLABELLED_MIRROR" not in project_env()
    given = project_env(None, tmp_path / "unsup.tar.gz")
    assert given["IMDB_UNLABELLED_MIRROR"] == str((tmp_path / "unsup.tar.gz").resolve())
    assert "none" in PROJECT_FILES  # the note `unlabelled: none` depends on


# ---- unlabelled texts in virtual adversarial training ----


def _unlabelled_from(split):
    """A split's token ids as unlabelled texts: its labels gone."""
    import numpy as np

    from sentiment.classifier.data.splits import Split

    return Split(split.token_ids, np.full(len(split), -1, np.int8), split.lengths)


def _vat_trainer(small_data, **overrides):
    from sentiment.classifier.training.fit import (
        _adversarial_trainer,
        _compiled_model,
        make_deterministic,
    )
    from tests.conftest import small_configs

    splits, vocabulary = small_data
    settings = {"embedding_dim": 8, "units": 8, "virtual_adversarial": 2.0} | overrides
    model_config, training_config = small_configs(len(vocabulary) + 2, **settings)
    make_deterministic(1)  # the same weights and the same random directions each time
    classifier = _compiled_model(model_config, training_config)
    return _adversarial_trainer(classifier, model_config, training_config, splits["train"])


def test_unlabelled_texts_change_the_loss_only_through_their_own_term(small_data):
    import tensorflow as tf

    splits, _ = small_data
    ids = tf.constant(splits["train"].token_ids[:32])
    labels = tf.constant(splits["train"].labels[:32].astype("float32"))
    texts = tf.constant(splits["test"].token_ids[:48])  # their labels never given

    alone, _ = _vat_trainer(small_data, adversarial=1.0).loss_terms(ids, labels)
    beside, _ = _vat_trainer(small_data, adversarial=1.0).loss_terms((ids, texts), labels)
    assert set(alone) == {"clean", "adversarial", "virtual"}
    assert set(beside) == set(alone) | {"unlabelled"}
    for name, term in alone.items():  # every labelled term exactly as without the texts
        assert float(beside[name]) == float(term), name
    assert float(beside["unlabelled"]) > 0
    flipped, _ = _vat_trainer(small_data, adversarial=1.0).loss_terms((ids, texts), 1 - labels)
    assert float(flipped["clean"]) != float(beside["clean"])  # the labels matter there...
    for name in ("virtual", "unlabelled"):  # ...and not to the terms that need none
        assert float(flipped[name]) == float(beside[name]), name


def test_each_batch_gets_full_unlabelled_batches_reshuffled_every_epoch(small_data):
    from sentiment.classifier.data.batching import batch_dataset, with_unlabelled

    splits, _ = small_data
    unlabelled = _unlabelled_from(splits["test"])

    def epochs(count):
        labelled = batch_dataset(splits["train"], batch_size=64, seed=1, by_length=True)
        paired = with_unlabelled(labelled, unlabelled, batch_size=48, seed=1, by_length=True)
        assert int(paired.cardinality()) == int(labelled.cardinality())
        return [
            [(ids.numpy(), texts.numpy(), y.numpy()) for (ids, texts), y in paired]
            for _ in range(count)
        ]

    first, second = epochs(2)
    assert len(first) == 25 and all(texts.shape[0] == 48 for _, texts, _ in first)
    assert all(not (texts == 0).all(axis=1).any() for _, texts, _ in first)  # no empty rows
    assert [t.tobytes() for _, t, _ in first] != [t.tobytes() for _, t, _ in second]
    again = epochs(1)[0]  # a new dataset, the same seed: the same batches
    assert all(
        (a[1].shape == b[1].shape and (a[1] == b[1]).all())
        for a, b in zip(first, again, strict=True)
    )


def test_training_with_unlabelled_texts_learns_and_needs_enough_of_them(small_data):
    from sentiment.classifier.training.fit import train_model
    from sentiment.errors import PipelineError
    from tests.conftest import small_configs

    splits, vocabulary = small_data
    settings = {
        "virtual_adversarial": 2.0,
        "unlabelled_ratio": 0.5,
        "unlabelled": "imdb",
        "epochs": 2,
    }
    model_config, training_config = small_configs(len(vocabulary) + 2, **settings)
    arguments = {
        "train": splits["train"],
        "validation": splits["validation"],
        "model_config": model_config,
        "training_config": training_config,
        "verbose": 0,
    }
    trained = train_model(**arguments, unlabelled=_unlabelled_from(splits["test"]))
    assert trained.history["val_accuracy"][-1] > 0.6, trained.history["val_accuracy"]  # chance: 0.5
    too_few = _unlabelled_from(splits["test"])
    too_few = type(too_few)(too_few.token_ids[:5], too_few.labels[:5], too_few.lengths[:5])
    with pytest.raises(PipelineError, match="takes 8 unlabelled texts a step and there are 5"):
        train_model(**arguments, unlabelled=too_few)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"unlabelled_ratio": 1.0, "unlabelled": "imdb"}, "set virtual_adversarial above 0"),
        ({"unlabelled_ratio": 1.0, "virtual_adversarial": 5.0}, "and unlabelled is none"),
        ({"unlabelled_ratio": -1.0}, "unlabelled_ratio must be at least 0"),
    ],
)
def test_an_unlabelled_ratio_without_its_term_or_texts_is_refused(changes, message):
    with pytest.raises(ParamsError, match=message):
        Params().replace(**changes)
