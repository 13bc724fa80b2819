"""The classifier: token ids -> embedding -> (bidirectional) recurrent layer -> probability."""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Iterator, Sequence

import keras
import tensorflow as tf
from keras import layers

from sentiment.classifier.data.text import OOV_ID
from sentiment.classifier.model.fast_layers import STOCK_TWINS, DenseGradientEmbedding, FusedLSTM
from sentiment.classifier.model.layers import (
    EMBEDDING,
    PERTURBATION,
    EmbeddingPerturbation,
    MaskedGlobalMaxPooling1D,
    NormalisedEmbedding,
    WordDropout,
    normalised_table,
)
from sentiment.classifier.model.private_apis import lstm_arguments_support_cudnn
from sentiment.params import ModelConfig

RECURRENT_LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}
# Same weights and maths as the stock layers, faster on CPU (see fast_layers.py).
FAST_LAYERS = {"lstm": FusedLSTM, "embedding": DenseGradientEmbedding}
# An ensemble's members are named member_0, member_1, ... inside it.
ENSEMBLE_MEMBER = "member"


def uses_adversarial_training(config: ModelConfig) -> bool:
    """Whether the model trains with an adversarial or virtual adversarial term."""
    return bool(config.adversarial or config.virtual_adversarial)


class CudnnWarning(UserWarning):
    """Params that keep the recurrent layers off the cuDNN kernel on a GPU."""


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (only then does cuDNN eligibility matter)."""
    return bool(tf.config.list_physical_devices("GPU"))


def cudnn_obstacles(config: ModelConfig) -> dict[str, str]:
    """The params that keep the recurrent layers off cuDNN on a GPU, each with why; {} if none.

    cuDNN runs LSTM and GRU with their default activations and no recurrent dropout (the only
    ones this builder makes), and reads a mask only as right padding. The fused LSTM moves each
    review's words to the front before its loop when it returns only its last output, so the
    default (pre padding, masked, pooling last) is eligible; a GRU, or an LSTM returning every
    step for pooling, sees the padding where `padding` put it.
    """
    cell, backward_cell, bidirectional = config.cell, config.backward_cell, config.bidirectional
    cells = {cell} | ({backward_cell} if bidirectional and backward_cell != "same" else set())
    obstacles = {
        key: f"{key}: simple_rnn has no cuDNN kernel (lstm and gru have one)"
        for key, name in (("cell", cell), ("backward_cell", backward_cell))
        if name == "simple_rnn" and (key == "cell" or bidirectional)
    }
    left_padded = sorted(
        name for name in cells if name == "gru" or (name == "lstm" and config.pooling != "last")
    )
    if config.mask_padding and config.padding == "pre" and left_padded:
        obstacles["padding"] = (
            f"padding: pre with mask_padding: true gives the {' and '.join(left_padded)} "
            "layers masks that are not right-padded, which cuDNN cannot read: set padding: post "
            "(a masked model's results do not depend on the padding side)"
        )
    return obstacles


def _recurrent(
    cell: str,
    units: int,
    name: str,
    stock_layers: bool,
    return_sequences: bool,
    go_backwards: bool = False,
    cudnn: bool = True,
) -> layers.Layer:
    fast = {} if stock_layers else FAST_LAYERS
    layer = fast.get(cell, RECURRENT_LAYERS[cell])
    options = {"return_sequences": return_sequences, "go_backwards": go_backwards, "name": name}
    if cell != "simple_rnn" and not cudnn:
        # Keras would hand cuDNN the left-padded mask and fail at run time; use its generic loop.
        options["use_cudnn"] = False
    # Default activations and no recurrent dropout keep LSTM/GRU eligible for cuDNN on a GPU.
    return layer(units, **options)


POOLING_LAYERS = {"max": MaskedGlobalMaxPooling1D, "mean": layers.GlobalAveragePooling1D}


def _summarise(features, pooling: str, dropout: float, name: str):
    """One review's feature vector: the recurrent layer's last output, or pooled over its steps."""
    if pooling != "last":
        features = POOLING_LAYERS[pooling](name=f"{name}_{pooling}_pool")(features)
    if dropout:
        features = layers.Dropout(dropout, name=f"{name}_dropout")(features)
    return features


def build_model(config: ModelConfig) -> keras.Model:
    """An uncompiled classifier over (batch, steps) int token ids, any number of steps: its output
    is the positive label's probability (batch, 1) with two labels, each label's (batch, N) with
    more (config.classes).

    mask_padding makes the recurrent layers skip padding (id 0): a review then gets the same
    probability however much padding surrounds it, so batches can be cut to their longest review.
    Without it the padding is read as input, as in the tutorial. stock_layers uses Keras' own
    LSTM and Embedding instead of their faster twins (for comparisons; the results agree).

    pooling "last" reads the recurrent layer's final output (the tutorial's model); "max" and
    "mean" pool its outputs over every step of the review. dropout drops that share of embedding
    channels (whole channels per review) and of the pooled features while training;
    word_dropout hides that share of a review's words (as out-of-vocabulary) while training.
    adversarial or virtual_adversarial (training only) normalise the embeddings and add the layer
    a training step perturbs them through (model/layers.py, training/adversarial.py).

    merge_mode "none" keeps the two directions apart: each reads the review alone and gives
    its own probability through its own Dense head, and the model outputs their mean, so the
    two directions vote as two independent classifiers. merge_mode is unused when
    bidirectional is false.

    padding (the data's padding side) changes nothing in the model: with cudnn_obstacles it
    decides whether the layers can use cuDNN on a GPU, and a CudnnWarning names the params that
    keep them off it.
    """
    obstacles = cudnn_obstacles(config)
    on_gpu = gpu_visible()  # without a GPU cuDNN is never used: nothing to warn of
    if on_gpu:
        for reason in obstacles.values():
            warnings.warn(f"no cuDNN on a GPU: {reason}", CudnnWarning, stacklevel=2)
    model = _build(config, obstacles)
    if on_gpu:
        _warn_of_layers_keras_keeps_off_cudnn(model)
    return model


def _build(config: ModelConfig, obstacles: dict[str, str]) -> keras.Model:
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    words = token_ids
    if config.word_dropout:
        words = WordDropout(config.word_dropout, OOV_ID, name="word_dropout")(token_ids)
    embedding = layers.Embedding if config.stock_layers else FAST_LAYERS["embedding"]
    adversarial = uses_adversarial_training(config)
    if adversarial:  # training-only layers; the saved model is folded back to a plain one
        embedding = NormalisedEmbedding
    embedded = embedding(
        config.vocab_size, config.embedding_dim, mask_zero=config.mask_padding, name=EMBEDDING
    )(words)
    if adversarial:
        embedded = EmbeddingPerturbation(name=PERTURBATION)(embedded)
    if config.dropout:
        embedded = layers.SpatialDropout1D(config.dropout, name="embedding_dropout")(embedded)
    cell, units, pooling, dropout = config.cell, config.units, config.pooling, config.dropout
    recurrent = {
        "stock_layers": config.stock_layers,
        "return_sequences": pooling != "last",
        # all layers to the generic loop, also a compacting LSTM beside a GRU: the simple rule
        "cudnn": "padding" not in obstacles,
    }
    if not config.bidirectional:
        features = _recurrent(cell, units, name=cell, **recurrent)(embedded)
        features = _summarise(features, pooling, dropout, name=cell)
        probability = _head(config.classes, name="probability")(features)
        return keras.Model(token_ids, probability, name=f"{cell}_classifier")

    backward = None
    if config.backward_cell != "same":
        backward = _recurrent(
            config.backward_cell,
            units,
            name=f"backward_{config.backward_cell}",
            go_backwards=True,
            **recurrent,
        )
    merge_mode = config.merge_mode
    merged = layers.Bidirectional(
        _recurrent(cell, units, name=f"forward_{cell}", **recurrent),
        merge_mode=None if merge_mode == "none" else merge_mode,
        backward_layer=backward,
        name="bidirectional",
    )(embedded)
    if merge_mode == "none":
        votes = [
            _head(config.classes, name=f"{direction}_vote")(
                _summarise(features, pooling, dropout, name=direction)
            )
            for direction, features in zip(("forward", "backward"), merged, strict=True)
        ]
        probability = layers.Average(name="probability")(votes)
    else:
        features = _summarise(merged, pooling, dropout, name="bidirectional")
        probability = _head(config.classes, name="probability")(features)
    return keras.Model(token_ids, probability, name=f"bidirectional_{cell}_{merge_mode}")


def _head(classes: int, name: str) -> layers.Dense:
    """The output layer: the positive label's probability for two labels, a softmax for more."""
    if classes == 2:
        return layers.Dense(1, activation="sigmoid", name=name)
    return layers.Dense(classes, activation="softmax", name=name)


def average_models(members: Sequence[keras.Model]) -> keras.Model:
    """One model over token ids whose probability is the mean of the members' probabilities.

    The members stay whole inside it (renamed member_0, member_1, ...), so it saves, loads and
    exports as one model.
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    votes = []
    for index, member in enumerate(members):
        member.name = f"{ENSEMBLE_MEMBER}_{index}"
        votes.append(member(token_ids))
    probability = layers.Average(name="probability")(votes)
    return keras.Model(token_ids, probability, name=f"ensemble_of_{len(members)}")


def nested_layers(model: keras.Model) -> Iterator[layers.Layer]:
    """Every layer of the model, those inside an ensemble's members included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from nested_layers(layer)


def recurrent_layers(model: keras.Model) -> Iterator[layers.RNN]:
    """Every recurrent layer of the model, each direction of a Bidirectional and members' too."""
    for layer in nested_layers(model):
        if isinstance(layer, layers.Bidirectional):
            yield from (layer.forward_layer, layer.backward_layer)
        elif isinstance(layer, layers.RNN):
            yield layer


def _warn_of_layers_keras_keeps_off_cudnn(model: keras.Model) -> None:
    """What cudnn_obstacles cannot see from the params: Keras' own verdict on each LSTM."""
    for layer in recurrent_layers(model):
        if isinstance(layer, layers.LSTM) and not lstm_arguments_support_cudnn(layer):
            warnings.warn(
                f"no cuDNN on a GPU: Keras refuses the arguments of LSTM layer {layer.name!r}",
                CudnnWarning,
                stacklevel=3,
            )


def fold_for_inference(classifier: keras.Model, config: ModelConfig) -> keras.Model:
    """The plain model of `config` (no adversarial pieces) with the trained weights, its
    embedding table normalised once: the same predictions as `classifier` in inference."""
    plain = build_model(dataclasses.replace(config, adversarial=0.0, virtual_adversarial=0.0))
    for layer in plain.layers:
        if not layer.weights:
            continue
        trained = classifier.get_layer(layer.name)
        if layer.name == EMBEDDING:
            table = normalised_table(trained.embeddings, trained.word_frequencies)
            layer.set_weights([keras.ops.convert_to_numpy(table)])
        else:
            layer.set_weights(trained.get_weights())
    return plain


# Layers that change nothing outside training: not part of what a model is.
_TRAINING_ONLY = (layers.Dropout, layers.SpatialDropout1D, WordDropout, layers.InputLayer)


def architecture(model: keras.Model) -> str:
    """The model as one line, read from its layers (what a model card says it is), e.g.
    "Embedding(5000, 15, masked) -> Bidirectional(LSTM(10), merge_mode=sum) -> Dense(1, sigmoid)".

    A pair of identical steps, one per direction (merge_mode none), reads "... per direction";
    an ensemble reads "mean of N x (member)".
    """
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if members:
        kinds = list(dict.fromkeys(architecture(member) for member in members))
        inner = f"{len(members)} x ({kinds[0]})" if len(kinds) == 1 else "; ".join(kinds)
        return f"mean of {inner}"
    steps = [_step(layer) for layer in model.layers if not isinstance(layer, _TRAINING_ONLY)]
    merged = []
    for step, run in itertools.groupby(steps):
        count = len(list(run))
        merged.append(f"{step} per direction" if count == 2 else step)
    return " -> ".join(merged)


def _step(layer: layers.Layer) -> str:
    if isinstance(layer, layers.Embedding):
        masked = ", masked" if layer.mask_zero else ""
        return f"Embedding({layer.input_dim}, {layer.output_dim}{masked})"
    if isinstance(layer, layers.Bidirectional):
        forward, backward = _cell(layer.forward_layer), _cell(layer.backward_layer)
        cells = forward if forward == backward else f"{forward} forward, {backward} backward"
        return f"Bidirectional({cells}, merge_mode={layer.merge_mode or 'none'})"
    if isinstance(layer, layers.RNN):
        return _cell(layer)
    if isinstance(layer, MaskedGlobalMaxPooling1D):
        return "max over steps"
    if isinstance(layer, layers.GlobalAveragePooling1D):
        return "mean over steps"
    if isinstance(layer, layers.Dense):
        return f"Dense({layer.units}, {layer.activation.__name__})"
    if isinstance(layer, layers.Average):
        return "mean"
    return type(layer).__name__


def _cell(layer: layers.RNN) -> str:
    name = type(layer).__name__
    return f"{STOCK_TWINS.get(name, name)}({layer.units})"
