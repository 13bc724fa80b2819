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

from sentiment import export
from sentiment.errors import PipelineError
from sentiment.fast_layers import with_stock_layers
from sentiment.params import Params
from sentiment.saving import save_model
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
MAX_LENGTH = 100


@pytest.fixture(scope="module")
def exported(small_data, trained_model, tmp_path_factory):
    """An export folder as the stage writes it: .keras, SavedModel, TFLite and model card."""
    _, vocabulary = small_data
    served_classifier = with_stock_layers(trained_model)
    padding = export.serving_padding("pre", mask_padding=True)  # trained pre-padded
    model = export.end_to_end_model(
        served_classifier, vocabulary, max_length=MAX_LENGTH, padding=padding, truncating="pre"
    )
    folder = tmp_path_factory.mktemp("export")
    save_model(model, folder / "model.keras")
    export.write_saved_model(model, folder / "saved_model", decision_threshold=0.5)
    export.write_tflite(served_classifier, folder / "model.tflite", MAX_LENGTH)
    card = export.model_card(
        params=vars(Params()) | {"max_length": MAX_LENGTH},
        manifest={"dataset": "synthetic", "splits": {"train": {"fingerprint": "f" * 64}}},
        vocabulary_words=len(vocabulary),
        test_metrics={
            "accuracy": 0.9,
            "roc_auc": 0.95,
            "log_loss": 0.3,
            "reviews": 10,
            "report": {"positive": {"f1-score": 0.9}},
        },
        tflite=True,
    )
    (folder / export.MODEL_CARD).write_text(json.dumps(card))
    return model, folder


def python_side(small_data, trained_model, texts):
    """Probabilities of the trained model on reviews vectorised the training way."""
    _, vocabulary = small_data
    ids, _ = vectorize(texts, vocabulary, max_length=MAX_LENGTH, padding="pre", truncating="pre")
    return predict_probabilities(trained_model, ids)


def synthetic_test_reviews(count):
    from sentiment.data import make_synthetic

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
    ids, _ = vectorize(
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
    printed = result.stdout.split("Result for output key probability:")[1]
    served = [float(value) for value in re.findall(r"[-+0-9.e]+", printed.split("]")[0])]
    expected = python_side(small_data, trained_model, texts)
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_tflite_model_matches_keras_on_100_reviews(exported, small_data, trained_model):
    _, folder = exported
    _, vocabulary = small_data
    texts = synthetic_test_reviews(100)
    ids, _ = vectorize(texts, vocabulary, max_length=MAX_LENGTH, padding="pre", truncating="pre")
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


def run_predict(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "sentiment.predict", *map(str, args)],
        cwd=PROJECT_ROOT,
        input=stdin,
        capture_output=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def records(result):
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_predict_reads_arguments_stdin_lines_and_json_lines_alike(exported, tmp_path):
    _, folder = exported
    reviews = [
        "The film was wonderful and the cast superb and the music moving.",
        "The film was boring and the plot tedious and the ending awful.",
    ]
    (tmp_path / "reviews.txt").write_text("\n".join(reviews) + "\n")
    (tmp_path / "reviews.jsonl").write_text(
        json.dumps({"review": reviews[0]}) + "\n" + json.dumps(reviews[1]) + "\n"
    )
    by_argument = records(run_predict("--model", folder, *reviews))
    assert [record["label"] for record in by_argument] == ["positive", "negative"]
    assert records(run_predict("--model", folder, stdin="\n".join(reviews).encode())) == (
        by_argument
    )
    assert records(run_predict("--model", folder, "--file", tmp_path / "reviews.txt")) == (
        by_argument
    )
    assert records(run_predict("--model", folder, "--file", tmp_path / "reviews.jsonl")) == (
        by_argument
    )
    keras_file = records(run_predict("--model", folder / "model.keras", *reviews))
    for served, loaded in zip(by_argument, keras_file, strict=True):
        assert abs(served["probability"] - loaded["probability"]) < 1e-5


def test_predict_uses_the_exports_decision_threshold_for_a_keras_file_too(exported, tmp_path):
    _, folder = exported
    review = "The film was wonderful and the cast superb and the music moving."
    (scored,) = records(run_predict("--model", folder / "model.keras", review))
    assert scored["label"] == "positive"
    # an export made with a threshold above this review's probability calls it negative
    card = json.loads((folder / export.MODEL_CARD).read_text())
    card["serving"]["decision_threshold"] = (scored["probability"] + 1) / 2
    strict = tmp_path / "strict"
    strict.mkdir()
    shutil.copy(folder / "model.keras", strict / "model.keras")
    (strict / export.MODEL_CARD).write_text(json.dumps(card))
    (record,) = records(run_predict("--model", strict / "model.keras", review))
    assert record["label"] == "negative"


def test_predict_scores_a_one_megabyte_review_on_its_last_words(exported):
    _, folder = exported
    long_review = "the film was boring and the plot tedious " * 26_000  # about 1 MB
    assert len(long_review.encode()) > 1_000_000
    (record,) = records(run_predict("--model", folder, stdin=long_review.encode()))
    assert record["label"] == "negative" and len(record["review"]) == 80


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [
        (["fine", "   "], None, "error: review 2 is empty: give each review some text"),
        (["fine", "?! ... :-)"], None, "error: review 2 has no words, only punctuation"),
        ([], b"caf\xe9 au lait\n", "error: stdin is not UTF-8 text (byte 3, line 1)"),
        ([], b"", "error: no review given"),
        (["--threshold", "1.5", "fine"], None, "error: --threshold must be strictly between"),
    ],
)
def test_bad_input_gets_one_line_and_exit_status_2(exported, arguments, stdin, message):
    _, folder = exported
    result = run_predict("--model", folder, *arguments, stdin=stdin)
    assert result.returncode == 2 and result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_a_bad_file_names_its_line(exported, tmp_path):
    _, folder = exported
    (tmp_path / "bad.jsonl").write_text('{"review": "good"}\n{"stars": 5}\n')
    (tmp_path / "latin1.txt").write_bytes("ok\ncr\xe8me br\xfbl\xe9e".encode("latin-1"))
    jsonl = run_predict("--model", folder, "--file", tmp_path / "bad.jsonl")
    assert jsonl.returncode == 2
    assert f"{tmp_path / 'bad.jsonl'}:2 is not a review" in jsonl.stderr.decode()
    latin = run_predict("--model", folder, "--file", tmp_path / "latin1.txt")
    assert latin.returncode == 2 and "(byte 5, line 2)" in latin.stderr.decode()


def test_models_that_are_not_ours_are_refused(exported, tmp_path):
    _, folder = exported
    foreign = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    foreign.save(tmp_path / "foreign.keras")
    with pytest.raises(PipelineError, match="without this pipeline's review vectoriser"):
        export.load_exported(tmp_path / "foreign.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    result = run_predict("--model", tmp_path / "junk.keras", "a review")
    assert result.returncode == 2
    assert b"is not a model exported by this pipeline" in result.stderr

    no_card = tmp_path / "no_card"
    shutil.copytree(folder / "saved_model", no_card / "saved_model")
    result = run_predict("--model", no_card, "a review")
    assert result.returncode == 2
    assert b"has no model card of this pipeline (model_card.json)" in result.stderr


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
    with pytest.raises(PipelineError, match="not this pipeline's reviews -> probability, label"):
        export.load_serving_signature(other)
