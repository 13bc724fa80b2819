import numpy as np
import pytest

from sentiment.classifier.data.preprocessing import prepare_splits
from sentiment.classifier.data.splits import (
    Split,
    carve_split,
    load_split,
    save_split,
    split_statistics,
)
from sentiment.classifier.data.text import (
    OOV_ID,
    PAD_ID,
    build_vocabulary,
    pad,
    tokenize,
)
from tests.conftest import vectorize_texts


def test_tokenize_lowercases_drops_line_breaks_and_keeps_apostrophes():
    assert tokenize("It's GREAT!<br /><br />Not bad, 10/10.") == [
        "it's",
        "great",
        "not",
        "bad",
        "10",
        "10",
    ]


def test_tokenize_lowercases_ascii_only_like_tensorflow():
    # str.lower() would turn the Kelvin sign into "k"; tf.strings.lower leaves it alone
    assert tokenize("\u212aelvin Élan") == ["elvin", "lan"]


def test_vocabulary_ranks_by_frequency_then_alphabetically_and_counts_reserved_ids():
    tokens = [["b", "a", "c"], ["c", "b"], ["c", "d"]]
    assert build_vocabulary(tokens, vocab_size=5) == ["c", "b", "a"]


@pytest.mark.parametrize(
    ("padding", "truncating", "expected"),
    [
        ("pre", "pre", [[0, 0, 5], [3, 4, 5]]),
        ("post", "pre", [[5, 0, 0], [3, 4, 5]]),
        ("pre", "post", [[0, 0, 5], [2, 3, 4]]),
        ("post", "post", [[5, 0, 0], [2, 3, 4]]),
    ],
)
def test_pad_and_truncate_each_side(padding, truncating, expected):
    padded = pad([[5], [2, 3, 4, 5]], max_length=3, padding=padding, truncating=truncating)
    assert padded.tolist() == expected
    assert padded.dtype == np.int32


def test_empty_reviews_become_all_padding():
    ids, lengths = vectorize_texts(
        ["", "!!!"], ["good"], max_length=4, padding="pre", truncating="pre"
    )
    assert (ids == PAD_ID).all() and lengths.tolist() == [0, 0]


def test_unknown_words_get_the_oov_id():
    ids, _ = vectorize_texts(
        ["good zzz"], ["good"], max_length=2, padding="post", truncating="post"
    )
    assert ids.tolist() == [[2, OOV_ID]]


def test_validation_split_is_stratified_deterministic_and_disjoint():
    labels = np.array([0, 1] * 50)
    fit, validation = carve_split(labels, share=0.2, seed=7)
    assert len(validation) == 20 and labels[validation].sum() == 10
    assert not set(fit) & set(validation) and len(fit) + len(validation) == 100
    again = carve_split(labels, share=0.2, seed=7)
    assert np.array_equal(again[1], validation)
    assert not np.array_equal(carve_split(labels, share=0.2, seed=8)[1], validation)


def test_vocabulary_comes_from_the_fit_reviews_only():
    train = [(f"common word{i}", i % 2) for i in range(40)]
    test = [("testonly common", 1)]
    splits, vocabulary = prepare_splits(
        {"train": train, "test": test},
        vocab_size=100,
        max_length=4,
        padding="pre",
        truncating="pre",
        validation_split=0.25,
        seed=0,
    )
    fit_words = set(vocabulary) - {"common"}
    assert "testonly" not in vocabulary
    assert len(fit_words) == 30  # the 10 validation reviews' words stay out
    assert [len(splits[name]) for name in ("train", "validation", "test")] == [30, 10, 1]


def test_split_files_round_trip_without_pickle_and_are_byte_stable(tmp_path):
    split = Split(
        token_ids=np.arange(12, dtype=np.int32).reshape(3, 4),
        labels=np.array([0, 1, 1], dtype=np.int8),
        lengths=np.array([4, 9, 1], dtype=np.int32),
    )
    save_split(split, tmp_path / "a.npz")
    save_split(split, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = load_split(tmp_path / "a.npz")
    assert np.array_equal(loaded.token_ids, split.token_ids)
    assert split_statistics(loaded, max_length=4)["truncated_share"] == round(1 / 3, 4)
