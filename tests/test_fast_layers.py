"""FusedLSTM is keras.layers.LSTM: same outputs and gradients, masked or not, either direction."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from sentiment.classifier.model.fast_layers import (
    DenseGradientEmbedding,
    FusedLSTM,
    compact,
    with_stock_layers,
)
from sentiment.params import ModelConfig, Params, TrainingConfig

RNG = np.random.default_rng(7)
# Pre-padded, post-padded, empty, full, and with a hole in the middle: every mask shape.
TOKEN_IDS = RNG.integers(1, 20, (6, 40))
TOKEN_IDS[0, :25] = 0
TOKEN_IDS[1, 31:] = 0
TOKEN_IDS[2, :] = 0
TOKEN_IDS[4, 10:18] = 0


def twin_models(
    merge_mode: str, mask_zero: bool, return_sequences: bool = False
) -> tuple[keras.Model, keras.Model]:
    """A stock-LSTM model and a FusedLSTM model with the same weights."""

    def build(recurrent):
        token_ids = keras.Input((None,), dtype="int32")
        embedded = layers.Embedding(20, 6, mask_zero=mask_zero)(token_ids)
        layer = recurrent(5, return_sequences=return_sequences)
        merged = layers.Bidirectional(layer, merge_mode=merge_mode)(embedded)
        return keras.Model(token_ids, merged)

    keras.utils.set_random_seed(0)
    stock, fused = build(layers.LSTM), build(FusedLSTM)
    fused.set_weights(stock.get_weights())
    return stock, fused


def assert_same_gradients(tape, stock, fused, atol: float) -> None:
    """Each (loss, model)'s gradients for its weights, the fused model's against the stock's."""
    stock_grads = tape.gradient(stock[0], stock[1].trainable_weights)
    fused_grads = tape.gradient(fused[0], fused[1].trainable_weights)
    for stock_grad, fused_grad in zip(stock_grads, fused_grads, strict=True):
        np.testing.assert_allclose(
            tf.convert_to_tensor(fused_grad), tf.convert_to_tensor(stock_grad), atol=atol
        )


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_zero", [True, False])
@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_fused_lstm_gives_the_stock_layers_outputs_and_gradients(
    mask_zero, merge_mode, return_sequences
):
    stock, fused = twin_models(merge_mode, mask_zero, return_sequences)
    with tf.GradientTape(persistent=True) as tape:
        stock_out, fused_out = stock(TOKEN_IDS), fused(TOKEN_IDS)
        stock_loss, fused_loss = tf.reduce_sum(stock_out**2), tf.reduce_sum(fused_out**2)
    np.testing.assert_allclose(fused_out, stock_out, atol=1e-6)
    assert_same_gradients(tape, (stock_loss, stock), (fused_loss, fused), atol=1e-5)


def test_a_review_with_no_words_keeps_the_initial_state():
    _, fused = twin_models("concat", mask_zero=True)
    assert np.array_equal(fused(TOKEN_IDS)[2], np.zeros(10))


def test_compact_moves_unmasked_steps_to_the_front_in_order():
    sequences = tf.constant([[[1.0], [2.0], [3.0], [4.0]], [[5.0], [6.0], [7.0], [8.0]]])
    mask = tf.constant([[False, True, False, True], [True, True, True, True]])
    compacted, lengths = compact(sequences, mask)
    assert lengths.numpy().tolist() == [2, 4]
    assert compacted[0, :2, 0].numpy().tolist() == [2.0, 4.0]
    assert compacted[1, :, 0].numpy().tolist() == [5.0, 6.0, 7.0, 8.0]


@pytest.mark.parametrize("time_major", [True, False])
def test_the_step_moves_are_the_same_by_inverted_permutation_or_by_sort(monkeypatch, time_major):
    from sentiment.classifier.model import fast_layers

    mask = tf.constant(np.random.default_rng(0).random((7, 13)) < 0.6)
    for reverse in (False, True):
        positions, _ = fast_layers.step_positions(mask, reverse=reverse)
        moves = {}
        for on_gpu in (False, True):  # on a GPU the inverse is a sort, kept on the device
            monkeypatch.setattr(fast_layers, "_on_gpu", lambda on_gpu=on_gpu: on_gpu)
            moves[on_gpu] = fast_layers._step_moves(positions, time_major=time_major)
        for ours, theirs in zip(moves[False], moves[True], strict=True):
            assert np.array_equal(ours.numpy(), theirs.numpy())
        take, give_back = moves[False]
        assert np.array_equal(tf.gather(take, give_back).numpy(), np.arange(7 * 13))


def test_the_keras_fallback_loop_over_compacted_steps_matches_too(monkeypatch):
    # Where the fused kernel does not apply (a GPU, dropout), the layer compacts the steps and
    # hands Keras a right-padded mask, the form cuDNN takes; the result must not change.
    stock, fused = twin_models("concat", mask_zero=True)
    monkeypatch.setattr(FusedLSTM, "_fusable", lambda self, mask: False)
    np.testing.assert_allclose(fused(TOKEN_IDS), stock(TOKEN_IDS), atol=1e-6)


def test_fused_lstm_saves_and_loads_as_itself(tmp_path):
    _, fused = twin_models("sum", mask_zero=True)
    fused.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert isinstance(loaded.layers[2].forward_layer, FusedLSTM)
    np.testing.assert_allclose(loaded(TOKEN_IDS), fused(TOKEN_IDS), atol=1e-7)


def test_dense_gradient_embedding_trains_exactly_like_the_stock_one():
    def build(embedding):
        token_ids = keras.Input((None,), dtype="int32")
        embedded = embedding(20, 4, mask_zero=True)(token_ids)
        pooled = layers.GlobalAveragePooling1D()(embedded)
        model = keras.Model(token_ids, layers.Dense(1, activation="sigmoid")(pooled))
        model.compile(keras.optimizers.Adam(0.1), "binary_crossentropy")
        return model

    keras.utils.set_random_seed(0)
    stock, dense = build(layers.Embedding), build(DenseGradientEmbedding)
    dense.set_weights(stock.get_weights())
    labels = np.arange(len(TOKEN_IDS)) % 2
    for _ in range(3):  # repeated ids in a batch: their gradients must add up the same way
        stock.train_on_batch(TOKEN_IDS, labels)
        dense.train_on_batch(TOKEN_IDS, labels)
    for stock_weights, dense_weights in zip(stock.get_weights(), dense.get_weights(), strict=True):
        np.testing.assert_allclose(dense_weights, stock_weights, atol=1e-6)


@pytest.mark.parametrize("merge_mode", ["sum", "none"])
def test_the_stock_twin_holds_only_keras_layers_and_gives_the_same_outputs(merge_mode):
    from sentiment.classifier.model.network import build_model

    params = Params().replace(embedding_dim=6, units=5, merge_mode=merge_mode, pooling="max")
    model = build_model(ModelConfig.from_params(params, vocab_size=20))
    twin = with_stock_layers(model)
    wrapper = twin.get_layer("bidirectional")
    assert type(wrapper.forward_layer) is layers.LSTM
    assert type(wrapper.backward_layer) is layers.LSTM
    assert type(twin.get_layer("embedding")) is layers.Embedding
    np.testing.assert_allclose(twin(TOKEN_IDS), model(TOKEN_IDS), atol=1e-6)


def _op_types(graph_def) -> list[str]:
    """Every op of a graph, those of the functions it calls (loop bodies) included."""
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes += function.node_def
    return [node.op for node in nodes]


@pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")), reason="cuDNN runs it on a GPU")
def test_training_with_the_default_params_runs_the_fused_kernel(small_data):
    from sentiment.classifier.data.batching import batch_dataset
    from sentiment.classifier.training.fit import train_model

    splits, vocabulary = small_data
    params = Params().replace(epochs=1)  # the default model and training, shortened
    model, _, _ = train_model(
        train=splits["train"],
        validation=splits["validation"],
        model_config=ModelConfig.from_params(params, vocab_size=len(vocabulary) + 2),
        training_config=TrainingConfig.from_params(params),
        verbose=0,
    )
    # The training step fit ran, traced again on a batch of the same data: forward and gradient.
    batch = next(
        iter(batch_dataset(splits["train"], batch_size=params.batch_size, seed=0, by_length=True))
    )
    step = tf.function(model.train_step).get_concrete_function(batch)
    ops = _op_types(step.graph.as_graph_def())
    # one kernel per direction forward and back, and no Keras time loop (a While op) beside them
    assert ops.count("BlockLSTMV2") == 2 and ops.count("BlockLSTMGradV2") == 2
    assert not {"While", "StatelessWhile"} & set(ops)


def _gradients(function, inputs, weights):
    """Gradients of a fixed random loss of (cell states, outputs) for each input."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        cell_states, outputs = function(*inputs)
        loss = tf.reduce_sum(cell_states * weights[0]) + tf.reduce_sum(outputs * weights[1])
    return tape.gradient(loss, inputs)


def test_the_looped_gradient_is_the_kernels_gradient():
    from sentiment.classifier.model.fast_layers import block_lstm_looped_gradient
    from sentiment.classifier.model.private_apis import block_lstm

    steps, batch, features, units = 17, 5, 7, 6
    rng = np.random.default_rng(3)

    def tensor(*shape, scale=1.0):
        return tf.constant(rng.normal(size=shape) * scale, tf.float32)

    inputs = [
        tensor(steps, batch, features),
        tensor(batch, units),
        tensor(batch, units),
        tensor(features + units, 4 * units, scale=0.4),
        tensor(4 * units, scale=0.2),
    ]
    weights = [tensor(steps, batch, units), tensor(steps, batch, units)]
    kernel = _gradients(block_lstm, inputs, weights)
    looped = _gradients(block_lstm_looped_gradient, inputs, weights)
    names = ["x", "cs_prev", "h_prev", "w", "b"]
    for name, ours, theirs in zip(names, looped, kernel, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=2e-5, err_msg=name)


@pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")), reason="cuDNN runs it on a GPU")
def test_wide_layers_train_through_the_looped_gradient_as_the_stock_layer_does():
    from sentiment.classifier.model.fast_layers import LOOPED_GRADIENT_UNITS

    units = LOOPED_GRADIENT_UNITS
    ids = np.concatenate([np.zeros((3, 5), int), RNG.integers(1, 20, (3, 15))], axis=1)
    ids[1, :12] = 0

    def build(recurrent):
        token_ids = keras.Input((None,), dtype="int32")
        embedded = layers.Embedding(20, units, mask_zero=True)(token_ids)
        merged = layers.Bidirectional(recurrent(units), merge_mode="concat")(embedded)
        return keras.Model(token_ids, layers.Dense(1)(merged))

    keras.utils.set_random_seed(1)
    stock, fused = build(layers.LSTM), build(FusedLSTM)
    fused.set_weights(stock.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        stock_loss = tf.reduce_sum(stock(ids) ** 2)
        fused_loss = tf.reduce_sum(fused(ids) ** 2)
    np.testing.assert_allclose(fused_loss, stock_loss, rtol=1e-5)
    assert_same_gradients(tape, (stock_loss, stock), (fused_loss, fused), atol=2e-5)
    step = tf.function(lambda: tf.gradients(tf.reduce_sum(fused(ids)), fused.trainable_weights))
    ops = _op_types(step.get_concrete_function().graph.as_graph_def())
    assert ops.count("BlockLSTMV2") == 2 and "BlockLSTMGradV2" not in ops
    assert {"While", "StatelessWhile"} & set(ops)  # the gradient's loop, one per direction
