import warnings

import keras
import numpy as np
import pytest
from keras import layers

from sentiment.classifier.model.layers import MaskedGlobalMaxPooling1D, WordDropout
from sentiment.classifier.model.network import CudnnWarning, architecture, build_model
from sentiment.classifier.model.private_apis import lstm_arguments_support_cudnn
from sentiment.params import ModelConfig, Params

MERGE_MODES = ("sum", "mul", "concat", "ave", "none")
CELLS = ("lstm", "gru", "simple_rnn")


def small_model(**overrides):
    # padding: the input's padding side matters only for the cuDNN warning
    base = {"embedding_dim": 4, "units": 3, "padding": "post", "pooling": "last"}
    params = Params().replace(**(base | overrides))
    return build_model(ModelConfig.from_params(params, vocab_size=30))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("merge_mode", MERGE_MODES)
def test_every_cell_and_merge_mode_gives_one_probability_per_review(cell, merge_mode):
    model = small_model(cell=cell, merge_mode=merge_mode)
    probabilities = model.predict(np.random.default_rng(0).integers(1, 30, (5, 12)), verbose=0)
    assert probabilities.shape == (5, 1)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert f"merge_mode={merge_mode})" in architecture(model)


def test_merge_mode_none_lets_each_direction_vote_with_its_own_head():
    model = small_model(merge_mode="none")
    assert {"forward_vote", "backward_vote"} <= {layer.name for layer in model.layers}
    assert isinstance(model.get_layer("probability"), layers.Average)


def test_concat_doubles_the_features_the_head_reads():
    assert small_model(merge_mode="concat").get_layer("probability").kernel.shape == (6, 1)
    assert small_model(merge_mode="sum").get_layer("probability").kernel.shape == (3, 1)


def test_unidirectional_baseline_has_no_bidirectional_layer():
    model = small_model(bidirectional=False, cell="gru")
    assert architecture(model).startswith("Embedding(30, 4, masked) -> GRU(3) -> ")
    assert not any(isinstance(layer, layers.Bidirectional) for layer in model.layers)


def test_a_different_backward_layer_is_used_for_the_backward_direction():
    wrapper = small_model(cell="lstm", backward_cell="gru").get_layer("bidirectional")
    assert isinstance(wrapper.forward_layer, layers.LSTM)
    assert isinstance(wrapper.backward_layer, layers.GRU) and wrapper.backward_layer.go_backwards


@pytest.fixture
def gpu(monkeypatch):
    """build_model behaves as on a machine with a GPU (the cuDNN warning is only given there)."""
    monkeypatch.setattr("sentiment.classifier.model.network.gpu_visible", lambda: True)


@pytest.mark.parametrize(
    "overrides",
    [{"pooling": "max", "padding": "post"}, {"pooling": "last", "padding": "pre"}],
)
def test_default_layers_stay_eligible_for_cudnn(gpu, overrides):
    # The defaults with padding: post (docs/scaling-out.md: what a GPU run sets), and the
    # tutorial's last-output pooling with either padding: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", CudnnWarning)
        wrapper = small_model(**overrides).get_layer("bidirectional")
    for lstm in (wrapper.forward_layer, wrapper.backward_layer):
        # Keras' own test of the arguments, and nothing that would switch its cuDNN path off
        assert lstm_arguments_support_cudnn(lstm)
        assert lstm.recurrent_dropout == 0 and lstm.use_cudnn == "auto"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"cell": "simple_rnn"}, "cell: simple_rnn has no cuDNN kernel"),
        ({"backward_cell": "simple_rnn"}, "backward_cell: simple_rnn has no cuDNN kernel"),
        ({"cell": "gru"}, "padding: pre with mask_padding: true gives the gru layers"),
        ({"pooling": "max"}, "padding: pre with mask_padding: true gives the lstm layers"),
    ],
)
def test_params_that_keep_the_layers_off_cudnn_are_named_in_a_warning(gpu, overrides, named):
    with pytest.warns(CudnnWarning, match=named):
        model = small_model(padding="pre", **overrides)
    if named.startswith("padding"):
        # Keras would hand cuDNN a left-padded mask and fail at run time: the generic loop instead
        wrapper = model.get_layer("bidirectional")
        assert wrapper.forward_layer.use_cudnn is False
        assert wrapper.backward_layer.use_cudnn is False


@pytest.mark.parametrize(
    "overrides",
    [
        {"cell": "gru", "padding": "post"},
        {"pooling": "mean", "padding": "post"},
        {"cell": "gru", "pooling": "max", "mask_padding": False},
        {"bidirectional": False, "cell": "gru", "padding": "post"},
    ],
)
def test_eligible_params_warn_of_nothing(gpu, overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CudnnWarning)
        small_model(**overrides)


def test_a_machine_without_a_gpu_gets_no_cudnn_warning(monkeypatch):
    monkeypatch.setattr("sentiment.classifier.model.network.gpu_visible", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CudnnWarning)
        model = small_model(cell="gru", padding="pre")  # an obstacle on a GPU
    assert model.get_layer("bidirectional").forward_layer.use_cudnn is False  # still avoided


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("merge_mode", ["sum", "none"])
def test_a_masked_review_scores_the_same_whatever_its_padding(cell, merge_mode, pooling):
    model = small_model(cell=cell, merge_mode=merge_mode, pooling=pooling)
    words = np.random.default_rng(1).integers(1, 30, (3, 7))
    pre = np.pad(words, ((0, 0), (9, 0)))
    post = np.pad(words, ((0, 0), (0, 4)))
    expected = model.predict(words, verbose=0)
    np.testing.assert_allclose(model.predict(pre, verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(model.predict(post, verbose=0), expected, atol=1e-6)


def test_without_the_mask_padding_is_read_as_input_as_in_the_tutorial():
    model = small_model(mask_padding=False)
    words = np.random.default_rng(1).integers(1, 30, (3, 7))
    padded = np.pad(words, ((0, 0), (9, 0)))
    assert not np.allclose(model.predict(padded, verbose=0), model.predict(words, verbose=0))


def test_masked_max_pooling_ignores_padding_and_gives_zero_for_an_empty_review():
    outputs = np.array([[[-3.0], [-1.0], [-2.0]], [[-5.0], [-4.0], [-6.0]]])
    mask = np.array([[False, True, True], [False, False, False]])
    pooled = MaskedGlobalMaxPooling1D()(outputs, mask=mask)
    assert np.asarray(pooled).tolist() == [[-1.0], [0.0]]  # padding's 0 would win otherwise


def test_dropout_drops_embedding_channels_and_pooled_features_only_in_training():
    model = small_model(pooling="max", dropout=0.5)
    names = {layer.name for layer in model.layers}
    assert {"embedding_dropout", "bidirectional_max_pool", "bidirectional_dropout"} <= names
    reviews = np.random.default_rng(2).integers(1, 30, (4, 9))
    assert np.array_equal(model(reviews, training=False), model(reviews, training=False))


def test_word_dropout_hides_words_only_in_training_and_never_padding():
    keras.utils.set_random_seed(3)
    layer = WordDropout(0.3, out_of_vocabulary_id=1)
    reviews = np.pad(np.random.default_rng(3).integers(2, 30, (50, 40)), ((0, 0), (10, 0)))
    trained_on = np.asarray(layer(reviews, training=True))
    assert np.array_equal(np.asarray(layer(reviews, training=False)), reviews)
    assert (trained_on[:, :10] == 0).all()  # padding untouched: the mask stays the same
    hidden = (trained_on[:, 10:] == 1).mean()
    assert 0.25 < hidden < 0.35
    assert ((trained_on == reviews) | (trained_on == 1)).all()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {},
            "Embedding(30, 4, masked) -> Bidirectional(LSTM(3), merge_mode=sum) "
            "-> Dense(1, sigmoid)",
        ),
        (
            {"bidirectional": False, "cell": "gru", "mask_padding": False, "word_dropout": 0.1},
            "Embedding(30, 4) -> GRU(3) -> Dense(1, sigmoid)",
        ),
        (
            {"backward_cell": "gru", "merge_mode": "concat", "pooling": "mean", "dropout": 0.2},
            "Embedding(30, 4, masked) -> Bidirectional(LSTM(3) forward, GRU(3) backward, "
            "merge_mode=concat) -> mean over steps -> Dense(1, sigmoid)",
        ),
        (
            {"merge_mode": "none", "pooling": "max"},
            "Embedding(30, 4, masked) -> Bidirectional(LSTM(3), merge_mode=none) -> max over "
            "steps per direction -> Dense(1, sigmoid) per direction -> mean",
        ),
    ],
)
def test_the_architecture_is_read_from_the_layers_the_model_has(overrides, expected):
    assert architecture(small_model(**overrides)) == expected


def test_an_ensemble_reads_as_the_mean_of_its_members():
    from sentiment.classifier.model.network import average_models

    members = [small_model(cell="gru"), small_model(cell="gru")]
    member = (
        "Embedding(30, 4, masked) -> Bidirectional(GRU(3), merge_mode=sum) -> Dense(1, sigmoid)"
    )
    assert architecture(average_models(members)) == f"mean of 2 x ({member})"


def test_on_a_gpu_an_lstm_keras_keeps_off_cudnn_is_named_in_a_warning(gpu):
    from sentiment.classifier.model.network import _warn_of_layers_keras_keeps_off_cudnn

    token_ids = keras.Input(shape=(None,), dtype="int32")
    embedded = layers.Embedding(30, 4)(token_ids)
    features = layers.LSTM(3, activation="relu", name="relu_lstm")(embedded)  # no cuDNN kernel
    model = keras.Model(token_ids, layers.Dense(1)(features))
    with pytest.warns(CudnnWarning, match="Keras refuses the arguments of LSTM layer 'relu_lstm'"):
        _warn_of_layers_keras_keeps_off_cudnn(model)
