import random
import re

import numpy as np
import pytest

from sentiment.classifier.data.preprocessing import most_used, number_words, prepare_splits
from sentiment.classifier.data.reviews import VALIDATION
from sentiment.classifier.data.splits import (
    Split,
    carve_split,
    load_split,
    load_words,
    save_split,
    save_words,
    split_statistics,
)
from sentiment.classifier.data.synthetic import make_synthetic
from sentiment.classifier.data.text import (
    LINE_BREAK_PATTERN,
    NON_TOKEN_PATTERN,
    OOV_ID,
    PAD_ID,
    pad,
    tokenize,
)
from sentiment.errors import PipelineError
from tests.conftest import die_as_killed, vectorize_texts


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


def pattern_tokens(text: str) -> list[str]:
    """tokenize's definition, written with the patterns the exported vectoriser uses."""
    lowered = re.sub(LINE_BREAK_PATTERN, " ", text).translate(
        str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    )
    return re.sub(NON_TOKEN_PATTERN, " ", lowered).split()


TRICKY_TEXTS = [
    "",
    "<BR/>?! <br>x<Br\t\r\n/>y<br / >z",
    "don't 'quote' O'NEIL 10/10 \u00e9t\u00e9 na\u00efve \u212aelvin \u017fs",
    "tabs\tand\nnew\rlines\x00nul\x7fdel \ud800 lone surrogate \U0001f600 emoji",
    "<<br>br /> <b r/> <br/ > <br\x0b/>",
]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_tokenize_splits_exactly_where_the_patterns_do(text):
    assert tokenize(text) == pattern_tokens(text)


def test_tokenize_agrees_with_the_patterns_on_random_text():
    rng = random.Random(7)
    alphabet = "aZ9' \t\n\r<>/brBR.,!\u00e9\u212a\u017f\x00\ud800\U0001f600-"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        assert tokenize(text) == pattern_tokens(text), repr(text)


def test_vocabulary_ranks_by_frequency_then_alphabetically_and_counts_reserved_ids():
    reviews = {
        "train": [("b a c", 0), ("c b", 1), ("c d", 0)],
        VALIDATION: [("a z", 1)],
        "test": [("d", 0)],
    }
    words, spelled = number_words(reviews, validation_split=0.2, seed=0)
    kept = most_used(words["train"], spelled, vocab_size=5)
    assert [spelled[number - 1] for number in kept] == ["c", "b", "a"]


def test_words_are_numbered_in_order_of_first_use_in_the_fit_reviews_only():
    reviews = {
        "train": [("Good film, good", 1), ("bad film", 0)],
        VALIDATION: [("good plot", 1)],
        "test": [("", 0), ("plot film twist", 1)],
    }
    words, spelled = number_words(reviews, validation_split=0.2, seed=0)
    assert spelled == ["good", "film", "bad"]
    unseen = 4
    assert [list(review) for review in words["train"].reviews()] == [[1, 2, 1], [3, 2]]
    assert [list(review) for review in words[VALIDATION].reviews()] == [[1, unseen]]
    assert [list(review) for review in words["test"].reviews()] == [[], [unseen, 2, unseen]]
    assert words["test"].labels.tolist() == [0, 1] and int(words["test"].distinct) == 3


def test_carved_validation_words_are_numbered_by_the_fit_reviews_first_use():
    # The carved validation reviews are train's; their words are not the fit reviews' words,
    # and the fit reviews' order of first use is not train's.
    texts = ["zeta alpha", "", "alpha beta", "beta gamma", "omega zeta", "gamma alpha"]
    reviews = {"train": [(text, index % 2) for index, text in enumerate(texts)], "test": []}
    words, spelled = number_words(reviews, validation_split=1 / 3, seed=5)
    fit, held_out = carve_split(np.array([index % 2 for index in range(6)]), share=1 / 3, seed=5)
    fit_tokens = [texts[i].split() for i in fit]
    expected = list(dict.fromkeys(token for tokens in fit_tokens for token in tokens))
    assert spelled == expected
    number = {word: index + 1 for index, word in enumerate(expected)}
    assert [list(review) for review in words["train"].reviews()] == [
        [number[token] for token in tokens] for tokens in fit_tokens
    ]
    unseen = len(expected) + 1
    assert [list(review) for review in words[VALIDATION].reviews()] == [
        [number.get(token, unseen) for token in texts[i].split()] for i in held_out
    ]


def test_words_of_many_labels_keep_their_labels_and_an_empty_split_has_no_reviews():
    train = [(f"word{label} shared", label) for label in range(200) for _ in range(2)]
    reviews = {"train": train, VALIDATION: train[:3], "test": []}
    words, _ = number_words(reviews, validation_split=0.2, seed=0)
    assert words["train"].labels.tolist() == [label for _, label in train]
    assert words["test"].reviews() == [] and len(words["test"]) == 0


def test_a_splits_words_survive_the_disk(tmp_path):
    reviews = {"train": [("a b a", 1), ("c", 0)], VALIDATION: [("b", 1)], "test": [("d a", 0)]}
    words, _ = number_words(reviews, validation_split=0.2, seed=0)
    for name, part in words.items():
        save_words(part, tmp_path / f"{name}.npz")
        again = load_words(tmp_path / f"{name}.npz")
        for field in ("numbers", "offsets", "labels", "distinct"):
            assert np.array_equal(getattr(again, field), getattr(part, field))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(PipelineError, match="is not a split's words from preprocess"):
        load_words(tmp_path / "broken.npz")


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


@pytest.mark.parametrize("carved", [True, False])
def test_words_numbered_side_by_side_are_the_serial_ones(monkeypatch, carved):
    from sentiment import forked
    from sentiment.classifier.data import preprocessing

    reviews = make_synthetic(400)
    if not carved:
        reviews = dict(reviews, validation=reviews["test"][:50])

    def numbered(processes: int):
        monkeypatch.setattr(forked, "processes_for", lambda tasks: processes)
        return number_words(reviews, validation_split=0.25, seed=3)

    (serial, serial_words), (side_by_side, words) = numbered(1), numbered(2)
    assert words == serial_words and len(words) > 50
    for name, part in serial.items():
        for field in ("numbers", "offsets", "labels", "distinct"):
            ours, theirs = getattr(side_by_side[name], field), getattr(part, field)
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), (name, field)
    assert not forked.SHARED

    monkeypatch.setattr(preprocessing, "_number_split", die_as_killed)
    with pytest.raises(PipelineError, match="a process tokenising the reviews died"):
        numbered(2)
    assert not forked.SHARED
