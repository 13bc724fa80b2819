"""Keras layers with the stock layers' weights and maths, and faster CPU kernels.

`FusedLSTM`: Keras 3 runs an LSTM on CPU as a generic while-loop of about twenty small ops per
time step, so its cost is executor overhead per step, not arithmetic. `FusedLSTM` is
`keras.layers.LSTM` with the same weights, config and maths; only the loop differs: on CPU it is
TensorFlow's fused `BlockLSTMV2` kernel (IFCO gate layout, Keras' own), one op per sequence.
Both the kernel and the loop hook it replaces are private APIs: they live in private_apis.py.

Masks are handled exactly and cheaply: each review's unmasked steps are moved to the front, the
loop runs over the batch, and each review's output is read at its own last step. That is what
Keras' masked loop computes (a masked step carries the state over), and it makes any mask
right-padded, the form cuDNN needs, so pre-padded reviews stay cuDNN-eligible.

`DenseGradientEmbedding`: keras.layers.Embedding hands its optimizer a sparse gradient, which
Keras' Adam turns dense twice per step (two scatter-adds over every looked-up row); this layer
gives the same gradient dense, summed once.

Tests hold both to the stock layers' outputs, gradients and training steps.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import layers

from sentiment.classifier.model.private_apis import (
    LSTMWithOwnLoop,
    block_lstm,
    block_lstm_forward,
)

# The gradient runs as a graph loop (block_lstm_looped_gradient) rather than BlockLSTMGradV2 for
# layers of at least this many units reading inputs at least as wide: BlockLSTMGradV2 multiplies
# by the whole kernel, inputs' rows included, at every step, and its cost grows with the input
# width where the loop's does not. Measured with `sentiment benchmark steps` (2-core AMD EPYC):
# 128 units on 128-wide inputs, batches of 64, a training step 1.6x as fast; below 64 units, or
# on narrower inputs, the loop's per-step op overhead costs as much as it saves or more.
LOOPED_GRADIENT_UNITS = 64


def step_positions(mask: tf.Tensor, reverse: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Where each step goes when a row's unmasked steps move to its front; and the row lengths.

    Unmasked steps keep their order (or reverse it, for the backward direction); masked steps
    follow them. One cumulative count gives this without sorting.
    """
    unmasked = tf.cast(mask, tf.int32)
    unmasked_so_far = tf.cumsum(unmasked, axis=1)  # this step included
    lengths = tf.reduce_sum(unmasked, axis=1)
    # among the row's unmasked steps (last first for the backward direction)
    rank = lengths[:, None] - unmasked_so_far if reverse else unmasked_so_far - 1
    masked_rank = tf.range(tf.shape(mask)[1])[None, :] - unmasked_so_far  # among masked steps
    return tf.where(mask, rank, lengths[:, None] + masked_rank), lengths


def _step_moves(positions: tf.Tensor, time_major: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Indices into a (batch x time, ...) flattening of the steps that put step t of row b at
    positions[b, t], and indices into the moved steps that undo it.

    The moved steps are (time, batch, ...) if time_major, else (batch, time, ...). Each row's
    positions are a permutation of its steps, so inverting the whole flattened permutation (one
    pass, no sort) gives the step that lands at each place.
    """
    batch, steps = tf.shape(positions)[0], tf.shape(positions)[1]
    row_starts = tf.range(batch)[:, None] * steps
    arrivals = positions + row_starts  # where each step lands, batch-major
    if _on_gpu():  # InvertPermutation runs on the host: a sort keeps the indices on the device
        sources = tf.argsort(positions, axis=1, stable=True) + row_starts
    else:
        flat = tf.math.invert_permutation(tf.reshape(arrivals, [-1]))
        sources = tf.reshape(flat, [batch, steps])
    if not time_major:
        return tf.reshape(sources, [-1]), tf.reshape(arrivals, [-1])
    arrivals = positions * batch + tf.range(batch)[:, None]  # where each step lands, time-major
    return tf.reshape(tf.transpose(sources), [-1]), tf.reshape(arrivals, [-1])


def _permute(values: tf.Tensor, take: tf.Tensor, give_back: tf.Tensor, swap: bool) -> tf.Tensor:
    """The steps of values (its first two axes flattened) gathered by the permutation `take`,
    with the first two axes swapped if `swap`; the gradient gathers by the inverse, `give_back`.

    tf.gather's own gradient is a scatter-add, and a float scatter is several times slower here.
    """
    shape = tf.shape(values)
    leading = tf.stack([shape[1], shape[0]]) if swap else shape[:2]
    steps = tf.concat([[-1], shape[2:]], 0)
    static = values.shape[1::-1] if swap else values.shape[:2]

    @tf.custom_gradient
    def permute(values):
        moved = tf.gather(tf.reshape(values, steps), take)

        def gradient(upstream):
            return tf.reshape(tf.gather(tf.reshape(upstream, steps), give_back), shape)

        return tf.reshape(moved, tf.concat([leading, shape[2:]], 0)), gradient

    moved = permute(values)
    moved.set_shape(static.concatenate(values.shape[2:]))
    return moved


def compact(sequences: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Move each row's unmasked steps to the front, in order; returns them and the row lengths."""
    positions, lengths = step_positions(mask, reverse=False)
    return _permute(sequences, *_step_moves(positions, time_major=False), swap=False), lengths


@tf.custom_gradient
def block_lstm_looped_gradient(x, cs_prev, h_prev, w, b):
    """block_lstm's forward (BlockLSTMV2) with its gradient as a graph loop over time steps.

    Only what carries from step to step runs in the loop: each step's gate gradients and, from
    them, the hidden state's gradient through the recurrent weights. The input gradient, the
    weight gradient (the inputs and previous outputs of every step against the gate gradients)
    and the bias gradient are one product each over all steps after the loop.
    """
    i, cs, f, o, ci, co, h = block_lstm_forward(x, cs_prev, h_prev, w, b)

    def gradient(cs_grad, h_grad):
        features = tf.shape(x)[2]
        w_x = w[:features]
        w_h_t = tf.transpose(w[features:])  # laid out once for the loop's products
        cs_before = tf.concat([cs_prev[None], cs[:-1]], axis=0)
        h_before = tf.concat([h_prev[None], h[:-1]], axis=0)
        # Each step's local derivatives, for all steps at once: the cell state's through the
        # output and the output gate's (against the output's gradient), the input, forget and
        # candidate gates' (against the cell state's).
        through_h = tf.concat([o * (1.0 - co * co), co * o * (1.0 - o)], axis=-1)
        through_cs = tf.concat(
            [ci * i * (1.0 - i), cs_before * f * (1.0 - f), i * (1.0 - ci * ci)], axis=-1
        )
        steps = tf.shape(x)[0]

        def step(t, dh_next, dcs_next, gates_grad):
            dh = h_grad[t] + dh_next
            dcs_from_h, d_output = tf.split(through_h[t] * tf.tile(dh, [1, 2]), 2, axis=-1)
            dcs = cs_grad[t] + dcs_next + dcs_from_h
            d_gates = tf.concat(  # IFCO, Keras' gate order
                [through_cs[t] * tf.tile(dcs, [1, 3]), d_output], axis=-1
            )
            dh_before = tf.matmul(d_gates, w_h_t)
            return t - 1, dh_before, dcs * f[t], gates_grad.write(t, d_gates)

        _, h_prev_grad, cs_prev_grad, gates_grad = tf.while_loop(
            lambda t, *_: t >= 0,
            step,
            (
                steps - 1,
                tf.zeros_like(h_prev),
                tf.zeros_like(cs_prev),
                tf.TensorArray(x.dtype, size=steps),
            ),
        )
        d_gates = tf.reshape(gates_grad.stack(), [-1, 4 * tf.shape(h)[2]])  # (time x batch, 4U)
        x_grad = tf.reshape(tf.matmul(d_gates, w_x, transpose_b=True), tf.shape(x))
        inputs = tf.concat([x, h_before], axis=-1)
        w_grad = tf.matmul(tf.reshape(inputs, [-1, tf.shape(inputs)[2]]), d_gates, transpose_a=True)
        return x_grad, cs_prev_grad, h_prev_grad, w_grad, tf.reduce_sum(d_gates, axis=0)

    return (cs, h), gradient


def fused_lstm(x, cs_prev, h_prev, w, b):
    """All cell states and outputs of the LSTM over time-major x, from the fused kernel; the
    gradient by the kernel or the loop, whichever is faster at this layer's size."""
    units, features = h_prev.shape[-1], x.shape[-1]
    if units is not None and features is not None and features >= units >= LOOPED_GRADIENT_UNITS:
        return block_lstm_looped_gradient(x, cs_prev, h_prev, w, b)
    return block_lstm(x, cs_prev, h_prev, w, b)


def _on_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="sentiment")
class FusedLSTM(LSTMWithOwnLoop):
    """keras.layers.LSTM, with its CPU time loop fused into one kernel and masks compacted."""

    def _fusable(self, mask) -> bool:
        cell = self.cell
        return (
            keras.backend.backend() == "tensorflow"
            and not _on_gpu()  # on a GPU, Keras' own cuDNN path is faster still
            and not (self.stateful or self.unroll)
            and cell.use_bias
            and not (cell.dropout or cell.recurrent_dropout)
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            # masked steps of a returned sequence: zeros (as Bidirectional asks), not carried
            and (mask is None or not self.return_sequences or self.zero_output_for_mask)
        )

    def time_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self._fusable(mask):
            return self._fused_loop(sequences, initial_state, mask)
        if mask is None or self.return_sequences:
            return super().time_loop(sequences, initial_state, mask, training=training)
        compacted, lengths = compact(sequences, mask)
        right_padded = tf.sequence_mask(lengths, tf.shape(mask)[1])
        return super().time_loop(compacted, initial_state, right_padded, training=training)

    def _fused_loop(self, sequences, initial_state, mask):
        """Keras' (last output, outputs, states) of the loop, from one BlockLSTMV2 kernel."""
        h_initial, c_initial = initial_state
        kernel = tf.concat([self.cell.kernel, self.cell.recurrent_kernel], axis=0)
        bias = tf.convert_to_tensor(self.cell.bias)
        if mask is None:
            time_major = tf.transpose(sequences, [1, 0, 2])
            if self.go_backwards:
                time_major = tf.reverse(time_major, [0])
            cell_states, outputs = fused_lstm(time_major, c_initial, h_initial, kernel, bias)
            sequence = tf.transpose(outputs, [1, 0, 2]) if self.return_sequences else None
            return self._results(outputs[-1], cell_states[-1], sequence)

        # The backward direction reads each row's own steps last to first, then its padding.
        positions, lengths = step_positions(mask, reverse=self.go_backwards)
        to_front, undo = _step_moves(positions, time_major=True)
        time_major = _permute(sequences, to_front, undo, swap=True)
        cell_states, outputs = fused_lstm(time_major, c_initial, h_initial, kernel, bias)
        # Each row's state after its own last step; a row with no step keeps its initial state.
        last_step = tf.stack([tf.maximum(lengths - 1, 0), tf.range(tf.shape(lengths)[0])], -1)
        empty = (lengths == 0)[:, None]
        last_output = tf.where(empty, h_initial, tf.gather_nd(outputs, last_step))
        last_cell = tf.where(empty, c_initial, tf.gather_nd(cell_states, last_step))
        sequence = None
        if self.return_sequences:
            # Back to each step's own place, zeros where masked, in reading order as Keras gives.
            sequence = tf.where(mask[:, :, None], _permute(outputs, undo, to_front, swap=True), 0.0)
            if self.go_backwards:
                sequence = tf.reverse(sequence, [1])
        return self._results(last_output, last_cell, sequence)

    @staticmethod
    def _results(last_output, last_cell, sequence):
        outputs = last_output[:, None, :] if sequence is None else sequence
        return last_output, outputs, [last_output, last_cell]


@keras.saving.register_keras_serializable(package="sentiment")
class DenseGradientEmbedding(layers.Embedding):
    """keras.layers.Embedding whose gradient reaches the optimizer dense (same values, one sum)."""

    def call(self, inputs):
        if keras.backend.backend() != "tensorflow" or self.quantization_mode:
            return super().call(inputs)
        table = tf.convert_to_tensor(self.embeddings)  # a read: the gradient reaches the variable
        outputs = _lookup_with_dense_gradient(table, tf.cast(inputs, tf.int32))
        return tf.cast(outputs, self.compute_dtype)


@tf.custom_gradient
def _lookup_with_dense_gradient(table: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
    """tf.gather(table, ids), whose gradient for the table is dense: each row's sum, once."""

    def gradient(upstream):
        rows = tf.reshape(upstream, [-1, tf.shape(table)[1]])
        summed = tf.math.unsorted_segment_sum(rows, tf.reshape(ids, [-1]), tf.shape(table)[0])
        return summed, None

    return tf.gather(table, ids), gradient


# Each fast layer and the Keras layer it is a twin of (same config, weights and maths).
STOCK_TWINS = {FusedLSTM.__name__: "LSTM", DenseGradientEmbedding.__name__: "Embedding"}


def _stock_config(config: Any) -> Any:
    """A model config with every fast layer replaced by its Keras twin."""
    if isinstance(config, list):
        return [_stock_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    swapped = {key: _stock_config(value) for key, value in config.items()}
    if swapped.get("class_name") in STOCK_TWINS and "config" in swapped:
        swapped |= {
            "module": "keras.layers",
            "class_name": STOCK_TWINS[swapped["class_name"]],
            "registered_name": None,
        }
    return swapped


def with_stock_layers(model: keras.Model) -> keras.Model:
    """The same functional model and weights, built from Keras' own layers only.

    What is served or converted should not need this module: TensorFlow Lite has no BlockLSTMV2,
    and a GPU server runs Keras' LSTM on cuDNN.
    """
    twin = keras.Model.from_config(_stock_config(model.get_config()))
    twin.set_weights(model.get_weights())
    return twin
