"""The baseline as it ships: a model of n-gram weights that reads raw text and gives the
probabilities the fitted baseline gives, saved and loaded whole, refused in one line when broken."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment.classifier.data.preprocessing import number_words
from sentiment.classifier.data.reviews import VALIDATION
from sentiment.classifier.data.synthetic import make_synthetic, make_synthetic_graded
from sentiment.classifier.evaluation.baseline import fit_baseline_on_texts
from sentiment.classifier.model.ngrams import NgramModel
from sentiment.errors import PipelineError
from tests.conftest import serve_in_fresh_process

# Beside the test reviews: words no fit review has, an empty text, one without a word, and a
# review far longer than any max_length (every word of it is read).
ODD_TEXTS = ["zzyzx qwertyuiop unheard", "", "!!! ...", "a " * 5000 + "great film"]


@pytest.fixture(scope="module", params=[2, 3], ids=["two labels", "three labels"])
def fitted(request):
    reviews = make_synthetic(300) if request.param == 2 else make_synthetic_graded(200, 3)
    return reviews, fit_baseline_on_texts(reviews, validation_split=0.2, seed=1)


def test_the_shipped_baseline_on_raw_text_gives_the_fitted_baselines_probabilities(fitted):
    reviews, baseline = fitted
    model = baseline.model
    texts = [text for text, _ in reviews["test"]]
    assert np.abs(model.probabilities_of_texts(texts) - baseline.test).max() < 1e-12
    labels = 2 if baseline.test.ndim == 1 else baseline.test.shape[1]
    odd = model.probabilities_of_texts(ODD_TEXTS)
    assert odd.shape == ((len(ODD_TEXTS),) if labels == 2 else (len(ODD_TEXTS), labels))
    assert np.all(np.isfinite(odd)) and np.all((odd > 0) & (odd < 1))
    # a text of no known n-gram scores the intercepts alone
    assert np.array_equal(odd[0], odd[1]) and np.array_equal(odd[1], odd[2])
    if labels > 2:
        assert np.allclose(odd.sum(axis=1), 1.0)
    # the validation probabilities are the ones the choice was made on
    words, _ = number_words(reviews, validation_split=0.2, seed=1)
    validation = baseline.validation
    predicted = validation >= 0.5 if labels == 2 else validation.argmax(axis=1)
    accuracy = np.mean(predicted == words[VALIDATION].labels)
    assert accuracy == pytest.approx(baseline.metrics["validation_accuracy"], abs=1e-6)


def test_the_shipped_weights_are_the_ratios_times_the_coefficients(fitted):
    from scipy.sparse import diags

    from sentiment.classifier.evaluation.baseline import (
        NaiveBayesLogistic,
        naive_bayes_ratios,
        targets_of,
    )
    from sentiment.classifier.model.ngrams import NgramVocabulary

    reviews, _ = fitted
    words, spelled = number_words(reviews, validation_split=0.2, seed=1)
    labels = words["train"].labels.astype(np.int64)
    classes = int(labels.max()) + 1
    ngrams = NgramVocabulary(2)
    features = ngrams.fit_transform(words["train"].reviews(), len(spelled))
    ratios = naive_bayes_ratios(features, labels, targets_of(classes))
    weighted = [features @ diags(ratio) for ratio in ratios]
    fitted_model = NaiveBayesLogistic(classes, 1.0, seed=1).fit_weighted(ratios, weighted, labels)
    shipped = fitted_model.shipped(ngrams, np.arange(features.shape[1]), 2, spelled)
    test = words["test"].reviews()
    theirs = fitted_model.probabilities(ngrams.transform(test))
    assert np.abs(shipped.probabilities(test) - theirs).max() < 1e-12
    # every kept n-gram spelled back from its word numbers
    assert shipped.ngrams.shape == (features.shape[1], 2)
    assert np.all(shipped.ngrams[:, 0] > 0)


def test_the_saved_baseline_loads_back_the_same_bits(fitted, tmp_path):
    reviews, baseline = fitted
    baseline.model.save(tmp_path / "baseline")
    first = {path.name: path.read_bytes() for path in (tmp_path / "baseline").iterdir()}
    assert set(first) == {"words.txt", "model.npz"}
    loaded = NgramModel.load(tmp_path / "baseline")
    texts = [text for text, _ in reviews["test"]] + ODD_TEXTS
    assert np.array_equal(
        loaded.probabilities_of_texts(texts), baseline.model.probabilities_of_texts(texts)
    )
    loaded.save(tmp_path / "again")
    assert {path.name: path.read_bytes() for path in (tmp_path / "again").iterdir()} == first


def test_a_missing_or_broken_baseline_is_refused_in_one_line(fitted, tmp_path):
    _, baseline = fitted
    folder = tmp_path / "baseline"
    with pytest.raises(PipelineError, match=r"words.txt is missing: .*`dvc repro baseline`"):
        NgramModel.load(folder)
    baseline.model.save(folder)
    (folder / "model.npz").write_bytes(b"not an archive")
    with pytest.raises(PipelineError, match=r"model.npz is not the baseline's n-gram weights"):
        NgramModel.load(folder)
    baseline.model.save(folder)
    (folder / "words.txt").write_text("only\nthree\nwords\n", encoding="utf-8")
    with pytest.raises(PipelineError, match=r"does not hold together: .*`dvc repro baseline`") as e:
        NgramModel.load(folder)
    assert "\n" not in str(e.value)


# The baseline in TensorFlow ops, as the export ships it.


def test_the_baseline_in_the_graph_gives_the_python_baselines_probabilities(fitted, tmp_path):
    import keras
    import tensorflow as tf

    from sentiment.classifier.serving.ngram_graph import baseline_end_to_end_model

    reviews, baseline = fitted
    texts = [text for text, _ in reviews["test"]] + ODD_TEXTS + ["Caf\u00e9 <br />GREAT!"]
    expected = baseline.model.probabilities_of_texts(texts)
    expected = expected[:, None] if expected.ndim == 1 else expected
    model = baseline_end_to_end_model(baseline.model)
    served = model.predict(tf.constant(texts), verbose=0)
    assert served.shape == expected.shape and served.dtype == np.float32
    assert np.abs(served - expected).max() < 1e-5
    model.save(tmp_path / "baseline.keras")
    loaded = keras.saving.load_model(tmp_path / "baseline.keras", safe_mode=True)
    assert np.array_equal(loaded.predict(tf.constant(texts), verbose=0), served)


def test_the_baselines_saved_model_serves_where_the_package_cannot_be_imported(fitted, tmp_path):
    from sentiment.classifier.serving import export
    from sentiment.classifier.serving.ngram_graph import baseline_end_to_end_model

    reviews, baseline = fitted
    labels = 2 if baseline.test.ndim == 1 else baseline.test.shape[1]
    names = [f"label {index}" for index in range(labels)]
    export.write_saved_model(
        baseline_end_to_end_model(baseline.model),
        tmp_path / "saved_model",
        decision_threshold=0.5,
        label_names=names,
    )
    texts = [text for text, _ in reviews["test"][:20]] + ODD_TEXTS
    served = serve_in_fresh_process(tmp_path / "saved_model", texts)
    expected = baseline.model.probabilities_of_texts(texts)
    if labels == 2:
        expected = np.column_stack([1 - expected, expected])
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["label"] == [names[index] for index in expected.argmax(axis=1)]
