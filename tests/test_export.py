"""The export as it is served: raw text in, checked through TensorFlow's own tools."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from sentiment.classifier.model.inference import predict_probabilities
from sentiment.classifier.serving import export
from sentiment.errors import PipelineError
from tests.conftest import MAX_LENGTH, serve_in_fresh_process, vectorize_texts

HARD_REVIEWS = [
    "A WONDERFUL film.<br /><br />The cast was superb!",
    "Not great... the ending was dull; 2/10",
    "",
    "Caf\u00e9 \u212aelvin \u2014 'brilliant' and \"moving\" \U0001f600",
    "tedious " * 400,  # far longer than max_length: truncation matters
]


def python_side(small_data, trained_model, texts):
    """Probabilities of the trained model on reviews vectorised the training way."""
    _, vocabulary = small_data
    ids, _ = vectorize_texts(
        texts, vocabulary, max_length=MAX_LENGTH, padding="pre", truncating="pre"
    )
    return predict_probabilities(trained_model, ids)


def synthetic_test_reviews(count):
    from sentiment.classifier.data.synthetic import make_synthetic

    return [text for text, _ in make_synthetic(2000)["test"][:count]]


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_exported_vectorizer_matches_python_preprocessing(
    small_data, trained_model, padding, truncating
):
    _, vocabulary = small_data
    model = export.end_to_end_model(
        trained_model, vocabulary, max_length=MAX_LENGTH, padding=padding, truncating=truncating
    )
    served = model.get_layer("vectorizer")(tf.constant(HARD_REVIEWS)).numpy()
    ids, _ = vectorize_texts(
        HARD_REVIEWS, vocabulary, max_length=MAX_LENGTH, padding=padding, truncating=truncating
    )
    assert np.array_equal(served, ids)


def test_a_masked_model_is_served_right_padded_for_cudnn():
    assert export.serving_padding("pre", mask_padding=True) == "post"
    assert export.serving_padding("pre", mask_padding=False) == "pre"  # it reads its padding


def test_raw_text_probabilities_match_the_trained_model(exported, small_data, trained_model):
    model, _ = exported
    texts = synthetic_test_reviews(200) + HARD_REVIEWS
    served = model.predict(tf.constant(texts), verbose=0)[:, 0]
    np.testing.assert_allclose(served, python_side(small_data, trained_model, texts), atol=1e-5)


def test_the_exported_keras_file_holds_only_keras_layers_and_the_vectoriser(exported):
    _, folder = exported
    config = json.dumps(
        json.loads(__import__("zipfile").ZipFile(folder / "model.keras").read("config.json"))
    )
    assert "FusedLSTM" not in config and "DenseGradientEmbedding" not in config


def test_parity_check_refuses_a_served_form_that_disagrees():
    with pytest.raises(PipelineError, match="the TFLite model differs from the trained model"):
        export.check_parity(np.array([0.5, 0.7]), np.array([0.5, 0.6]), "the TFLite model")
    assert export.check_parity(np.array([0.5]), np.array([0.5 + 1e-7]), "x") < 1e-5


def test_saved_model_serves_raw_strings_in_a_fresh_process(exported, small_data, trained_model):
    _, folder = exported
    served = serve_in_fresh_process(folder / "saved_model", HARD_REVIEWS)
    expected = python_side(small_data, trained_model, HARD_REVIEWS)
    np.testing.assert_allclose(np.array(served["probabilities"])[:, 1], expected, atol=1e-5)
    np.testing.assert_allclose(np.array(served["probabilities"]).sum(axis=1), 1.0, atol=1e-6)
    names = np.array(["negative", "positive"])
    assert served["label"] == names[(expected >= 0.5).astype(int)].tolist()


def test_saved_model_cli_runs_the_serving_signature_on_raw_strings(
    exported, small_data, trained_model
):
    _, folder = exported
    texts = [*synthetic_test_reviews(4), HARD_REVIEWS[0], HARD_REVIEWS[3]]
    result = subprocess.run(
        [
            shutil.which("saved_model_cli", path=Path(sys.executable).parent) or "saved_model_cli",
            "run",
            "--dir",
            str(folder / "saved_model"),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            f"reviews={texts!r}",  # a Python expression, which saved_model_cli evaluates
        ],
        capture_output=True,
        text=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
        check=True,
    )
    printed = result.stdout.split("Result for output key probabilities:")[1]
    cells = [float(value) for value in re.findall(r"[-+0-9.e]+", printed.split("]]")[0])]
    served = np.array(cells).reshape(-1, 2)[:, 1]  # (P(negative), P(positive)) per review
    expected = python_side(small_data, trained_model, texts)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    names = result.stdout.split("Result for output key label:")[1]
    assert names.count("b'positive'") + names.count("b'negative'") == len(texts)


def test_tflite_model_matches_keras_on_100_reviews(exported, small_data, trained_model):
    _, folder = exported
    _, vocabulary = small_data
    texts = synthetic_test_reviews(100)
    ids, _ = vectorize_texts(
        texts, vocabulary, max_length=MAX_LENGTH, padding="pre", truncating="pre"
    )
    lite = export.tflite_probabilities(folder / "model.tflite", ids)
    np.testing.assert_allclose(lite, predict_probabilities(trained_model, ids), atol=1e-5)


def test_model_card_traces_the_model_to_its_run(exported):
    _, folder = exported
    card = json.loads((folder / export.MODEL_CARD).read_text())
    assert card["pipeline"] == export.PIPELINE
    assert card["params"]["merge_mode"] == "sum" and card["params"]["max_length"] == MAX_LENGTH
    assert card["data"]["splits"]["train"]["fingerprint"] == "f" * 64
    assert card["vocabulary_words"] > 10 and card["test_metrics"]["accuracy"] == 0.9
    assert card["versions"] == {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": card["versions"]["python"],
    }
    assert re.fullmatch(r"[0-9a-f]{40}", card["git_commit"])
    assert set(card["serving"]) >= {"saved_model", "keras", "tflite", "decision_threshold"}


def test_a_saved_model_with_another_signature_is_refused(exported, tmp_path):
    _, folder = exported
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(folder / export.MODEL_CARD, other / export.MODEL_CARD)
    module = tf.Module()
    module.serve = tf.function(
        lambda text: {"score": tf.strings.length(text)},
        input_signature=[tf.TensorSpec([None], tf.string, name="text")],
    )
    tf.saved_model.save(module, str(other / "saved_model"), signatures=module.serve)
    with pytest.raises(PipelineError, match="not this pipeline's reviews -> probabilities, label"):
        export.load_serving_signature(other)
