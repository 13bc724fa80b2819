"""Every private Keras and TensorFlow API the project uses, behind this one door.

Each was checked against TensorFlow 2.21.0 and Keras 3.15.1 (`CHECKED_WITH`, the versions
pyproject.toml pins). Each entry says what it is for and what breaks if a release changes it;
`missing_private_apis` (run by tests/test_private_apis.py) names any that a new release removed, and
tests/test_fast_layers.py fails if training stops running the fused kernel. After an upgrade:
run the tests, re-check each entry below, then update CHECKED_WITH.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

import keras
import tensorflow as tf
from keras import layers

CHECKED_WITH = {"tensorflow": "2.21.0", "keras": "3.15.1"}

# (module, attribute) of each private API used below; missing_private_apis checks each is there.
_PRIVATE_APIS = (
    ("keras.src.backend.tensorflow.trainer", "reduce_per_replica"),
    ("keras.src.backend.tensorflow.trainer", "_collective_all_reduce_multi_worker"),
    ("keras.src.backend.tensorflow.rnn", "_do_lstm_arguments_support_cudnn"),
    ("keras.src.trainers.trainer", "Trainer._symbolic_build"),
    ("keras.src.backend.tensorflow.trainer", "TensorFlowTrainer._maybe_symbolic_build"),
    ("keras.src.layers.rnn.lstm", "LSTM.inner_loop"),
    ("tensorflow.raw_ops", "BlockLSTMV2"),
    ("tensorflow.raw_ops", "BlockLSTMGradV2"),
    ("tensorflow.python.framework.convert_to_constants", "convert_variables_to_constants_v2"),
    ("tensorflow.tsl.profiler.protobuf.xplane_pb2", "XSpace"),
    ("keras.src.optimizers.base_optimizer", "BaseOptimizer._get_variable_index"),
)


def missing_private_apis() -> list[str]:
    """The private APIs this module uses that the installed Keras and TensorFlow lack."""
    missing = []
    for module_name, attribute in _PRIVATE_APIS:
        try:
            found = importlib.import_module(module_name)
            for part in attribute.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            missing.append(f"{module_name}.{attribute}")
    return missing


# --- The LSTM's time loop (Keras' private `inner_loop` hook) ----------------------------------
# keras.layers.LSTM.call runs its recurrence through `inner_loop(sequences, initial_state, mask,
# training)`, which returns (last_output, outputs, states); Keras' LSTM overrides it to try cuDNN
# first. If a release renames it or changes its arguments, FusedLSTM's override is never called
# and training silently falls back to Keras' generic loop (same results, about 3x slower on CPU):
# the fused-kernel test in tests/test_fast_layers.py fails then.


class LSTMWithOwnLoop(layers.LSTM):
    """keras.layers.LSTM whose time loop a subclass replaces by overriding `time_loop`."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        return self.time_loop(sequences, initial_state, mask, training=training)

    def time_loop(self, sequences, initial_state, mask, training=False):
        """(last output, outputs, states) of the recurrence; by default Keras' own loop."""
        return super().inner_loop(sequences, initial_state, mask, training=training)


# --- The fused LSTM kernel (tf.raw_ops.BlockLSTMV2 and BlockLSTMGradV2) -------------------------
# Not in TensorFlow's public Python API, only as raw ops. If a release removes them, FusedLSTM
# fails when its graph is traced; if it changes their gate layout (IFCO, Keras' own), the fused
# layer's outputs stop matching keras.layers.LSTM (tests/test_fast_layers.py compares them).


def _kernel_inputs(x, cs_prev, h_prev, w, b) -> dict:
    """The inputs BlockLSTMV2 and BlockLSTMGradV2 share: no peepholes, the whole sequence."""
    no_peephole = tf.zeros(tf.shape(b)[:1] // 4, dtype=x.dtype)
    return {
        "seq_len_max": tf.cast(tf.shape(x)[0], tf.int64),
        "x": x,
        "cs_prev": cs_prev,
        "h_prev": h_prev,
        "w": w,
        "wci": no_peephole,
        "wcf": no_peephole,
        "wco": no_peephole,
        "b": b,
        "use_peephole": False,
    }


def block_lstm_forward(x, cs_prev, h_prev, w, b) -> tuple[tf.Tensor, ...]:
    """BlockLSTMV2 over time-major x (time, batch, features): (i, cs, f, o, ci, co, h), each
    (time, batch, units), the gates after their activations."""
    return tf.raw_ops.BlockLSTMV2(cell_clip=0.0, **_kernel_inputs(x, cs_prev, h_prev, w, b))


@tf.custom_gradient
def block_lstm(x, cs_prev, h_prev, w, b):
    """BlockLSTMV2 over time-major x (time, batch, features); returns all cell states and outputs.

    The gradient is BlockLSTMGradV2's: TensorFlow registers the V1 gradient (ICFO gate layout) for
    the V2 op, which is wrong for V2's IFCO weights.
    """
    shared = _kernel_inputs(x, cs_prev, h_prev, w, b)
    i, cs, f, o, ci, co, h = tf.raw_ops.BlockLSTMV2(cell_clip=0.0, **shared)  # 0: no clipping

    def gradient(cs_grad, h_grad):
        grads = tf.raw_ops.BlockLSTMGradV2(
            i=i, cs=cs, f=f, o=o, ci=ci, co=co, h=h, cs_grad=cs_grad, h_grad=h_grad, **shared
        )
        x_grad, cs_prev_grad, h_prev_grad, w_grad, _, _, _, b_grad = grads
        return x_grad, cs_prev_grad, h_prev_grad, w_grad, b_grad

    return (cs, h), gradient


# --- cuDNN eligibility (keras.src.backend.tensorflow.rnn) ---------------------------------------
# Keras' own test of whether an LSTM's arguments let it run on cuDNN. If it changes, only the test
# that the default layers stay cuDNN-eligible (tests/test_model.py) is affected.


def lstm_arguments_support_cudnn(lstm: layers.LSTM) -> bool:
    """Whether Keras would run this LSTM's arguments on cuDNN (activations, unroll, bias)."""
    from keras.src.backend.tensorflow.rnn import _do_lstm_arguments_support_cudnn

    return _do_lstm_arguments_support_cudnn(
        lstm.activation, lstm.recurrent_activation, lstm.unroll, lstm.use_bias
    )


# --- Variables frozen into constants (tensorflow.python.framework.convert_to_constants) --------
# The TFLite export converts a function whose weights are constants, so that the recurrent loop
# becomes TFLite's builtin WHILE. If this function moves, `write_tflite` (export_tflite: true)
# fails at import; tests/test_export.py's TFLite tests catch it.


def freeze_variables(function: tf.types.experimental.ConcreteFunction):
    """The concrete function with every variable it reads replaced by a constant."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(function)


# --- fit under MultiWorkerMirroredStrategy (keras-team/keras#20585) ------------------------------
# Uses keras.src.backend.tensorflow.trainer.reduce_per_replica (patched for the duration of fit)
# and _collective_all_reduce_multi_worker, and Trainer._symbolic_build / _maybe_symbolic_build.
# If they change, multi-worker training fails at its first step or at the first epoch's logs;
# the two-worker test in tests/test_distribution.py trains through both.


@contextlib.contextmanager
def multi_worker_fit(model: keras.Model, sample_batch) -> Iterator[None]:
    """Within it, model.fit runs under MultiWorkerMirroredStrategy; leaving it undoes the patch.

    fit builds the model's, loss's and metrics' state from the first distributed batch, which it
    reduces across workers eagerly, and it averages each step's logs across workers over an axis
    that scalars lack; both stop it. The build needs only a batch's shapes and dtypes, so it is
    done here from a local batch, and the logs are averaged over the workers alone. Keras'
    reduce_per_replica is replaced for the whole process while inside, so only fit belongs here.
    """
    from keras.src.backend.tensorflow import trainer

    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=sample_batch)
    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values
            )
        return keras_reduce(values, strategy, reduction)

    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        trainer.reduce_per_replica = keras_reduce
        del model._maybe_symbolic_build  # the instance's no-op: Keras' method shows again


# --- The optimizer's moving average of the weights (weight_averaging) ---------------------------
# Keras' optimizers keep the average of each trainable variable (use_ema) in the private list
# `_model_variables_moving_average`, indexed by `_get_variable_index`, and write it into the
# variables only at the end of fit. The best-epoch callback scores and keeps each epoch's average;
# if these move, weight_averaging training fails at its first epoch's end (tests/test_training.py).


def averaged_values(optimizer: keras.optimizers.Optimizer, variables) -> list:
    """The optimizer's moving average of each of `variables` (trainable ones it updates), or
    the variable itself where it keeps none (non-trainable weights)."""
    averages = getattr(optimizer, "_model_variables_moving_average", None) or []
    if not averages:
        return list(variables)
    found = []
    for variable in variables:
        average = None
        if variable.trainable:
            try:
                average = averages[optimizer._get_variable_index(variable)]
            except KeyError:  # a variable the optimizer does not update
                average = None
        found.append(variable if average is None else average)
    return found


# --- TensorFlow's profiler trace (`sentiment benchmark steps`) ---------------------------------
# The profiler writes each run as an XSpace protobuf (*.xplane.pb): planes of threads, each a line
# of timed events named by metadata. TensorFlow ships the message class only in its private tsl
# package; if a release moves it, `sentiment benchmark steps` cannot read its trace.


def read_profiler_trace(data: bytes):
    """The XSpace message of a *.xplane.pb file's bytes."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(data)
    return space
