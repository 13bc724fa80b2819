import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from sentiment.errors import PipelineError
from sentiment.export import check_parity, end_to_end_model, load_exported, write_saved_model
from sentiment.text import vectorize
from sentiment.training import predict_probabilities
from tests.conftest import PROJECT_ROOT

HARD_REVIEWS = [
    "A WONDERFUL film.<br /><br />The cast was superb!",
    "Not great... the ending was dull; 2/10",
    "",
    "Caf\u00e9 \u212aelvin \u2014 'brilliant' and \"moving\" \U0001f600",
    "tedious " * 400,  # far longer than max_length: truncation matters
]


@pytest.fixture(scope="module")
def exported(small_data, trained_model, tmp_path_factory):
    """The trained model exported end to end as .keras and SavedModel."""
    _, vocabulary = small_data
    model = end_to_end_model(
        trained_model, vocabulary, max_length=100, padding="pre", truncating="pre"
    )
    folder = tmp_path_factory.mktemp("export")
    model.save(folder / "model.keras")
    write_saved_model(model, folder / "saved_model", decision_threshold=0.5)
    return model, folder


def python_side(small_data, trained_model, texts):
    _, vocabulary = small_data
    ids, _ = vectorize(texts, vocabulary, max_length=100, padding="pre", truncating="pre")
    return predict_probabilities(trained_model, ids)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_exported_vectorizer_matches_python_preprocessing(
    small_data, trained_model, padding, truncating
):
    _, vocabulary = small_data
    model = end_to_end_model(
        trained_model, vocabulary, max_length=100, padding=padding, truncating=truncating
    )
    served = model.get_layer("vectorizer")(tf.constant(HARD_REVIEWS)).numpy()
    ids, _ = vectorize(
        HARD_REVIEWS, vocabulary, max_length=100, padding=padding, truncating=truncating
    )
    assert np.array_equal(served, ids)


def test_raw_text_probabilities_match_the_trained_model(exported, small_data, trained_model):
    model, _ = exported
    from sentiment.data import make_synthetic

    texts = [text for text, _ in make_synthetic(1000)["test"][:200]] + HARD_REVIEWS
    served = model.predict(tf.constant(texts), verbose=0)[:, 0]
    np.testing.assert_allclose(served, python_side(small_data, trained_model, texts), atol=1e-5)


def test_parity_check_refuses_a_vectorizer_that_disagrees(small_data, trained_model):
    _, vocabulary = small_data
    shifted = end_to_end_model(
        trained_model, vocabulary[1:], max_length=100, padding="pre", truncating="pre"
    )
    texts = ["the film was wonderful", "the film was boring and tedious"]
    ids, _ = vectorize(texts, vocabulary, max_length=100, padding="pre", truncating="pre")
    with pytest.raises(PipelineError, match="differs from the trained one"):
        check_parity(shifted, trained_model, texts, ids)


def test_saved_model_serves_raw_strings_in_a_fresh_process(exported, small_data, trained_model):
    _, folder = exported
    script = (
        "import json, sys, tensorflow as tf\n"
        "serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "out = serve(reviews=tf.constant(json.loads(sys.argv[2])))\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, folder / "saved_model", json.dumps(HARD_REVIEWS)],
        capture_output=True,
        text=True,
        check=True,
    )
    served = json.loads(result.stdout.strip().splitlines()[-1])
    expected = python_side(small_data, trained_model, HARD_REVIEWS)
    np.testing.assert_allclose(served["probability"], expected, atol=1e-5)
    assert served["label"] == (expected >= 0.5).astype(int).tolist()


def run_predict(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "sentiment.predict", *map(str, args)],
        cwd=PROJECT_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_predict_prints_label_and_probability_for_arguments_and_stdin(exported):
    _, folder = exported
    review = "The film was wonderful and the cast superb and the music moving."
    by_argument = run_predict("--model", folder / "model.keras", review)
    by_stdin = run_predict("--model", folder / "model.keras", stdin=review + "\n")
    assert by_argument.returncode == 0, by_argument.stderr
    record = json.loads(by_argument.stdout)
    assert record["label"] == "positive" and 0.5 <= record["probability"] <= 1
    assert json.loads(by_stdin.stdout) == record


def test_predict_refuses_an_empty_review_in_one_line(exported):
    _, folder = exported
    result = run_predict("--model", folder / "model.keras", "fine", "   ")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: review 2 is empty: give each review some text"
    )


def test_models_that_are_not_ours_are_refused(tmp_path):
    foreign = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    foreign.save(tmp_path / "foreign.keras")
    with pytest.raises(PipelineError, match="without this pipeline's review vectoriser"):
        load_exported(tmp_path / "foreign.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    result = run_predict("--model", tmp_path / "junk.keras", "a review")
    assert result.returncode == 2
    assert "is not a model exported by this pipeline" in result.stderr.strip().splitlines()[-1]


def test_predict_refuses_stdin_that_is_not_utf8(exported):
    _, folder = exported
    result = subprocess.run(
        [sys.executable, "-m", "sentiment.predict", "--model", folder / "model.keras"],
        cwd=PROJECT_ROOT,
        input=b"caf\xe9 au lait\n",
        capture_output=True,
    )
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        "error: stdin is not UTF-8 text (byte 3): convert it, e.g. with iconv"
    )
