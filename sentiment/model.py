"""The classifier: token ids -> embedding -> (bidirectional) recurrent layer -> probability."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import keras
import tensorflow as tf
from keras import layers, ops

from sentiment.adversarial import (
    EMBEDDING,
    PERTURBATION,
    EmbeddingPerturbation,
    NormalisedEmbedding,
    uses_adversarial_training,
)
from sentiment.fast_layers import DenseGradientEmbedding, FusedLSTM
from sentiment.params import ModelConfig
from sentiment.text import OOV_ID

RECURRENT_LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}
# Same weights and maths as the stock layers, faster on CPU (see fast_layers.py).
FAST_LAYERS = {"lstm": FusedLSTM, "embedding": DenseGradientEmbedding}
# An ensemble's members are named member_0, member_1, ... inside it.
ENSEMBLE_MEMBER = "member"


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


@keras.saving.register_keras_serializable(package="sentiment")
class MaskedGlobalMaxPooling1D(layers.Layer):
    """Each feature's maximum over a review's unmasked steps (0 for a review with none).

    Keras' GlobalMaxPooling1D ignores the mask, so padding's zeros would enter the maximum and a
    review's score would depend on how much padding its batch gave it.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        steps = ops.expand_dims(ops.cast(mask, "bool"), -1)
        maximum = ops.max(ops.where(steps, inputs, float("-inf")), axis=1)
        return ops.where(ops.any(steps, axis=1), maximum, 0.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="sentiment")
class WordDropout(layers.Layer):
    """While training, replace each word of a review by the out-of-vocabulary id with a probability.

    A model that cannot count on any single word learns from many: on IMDB it keeps the network
    from leaning on the names of the films in its training reviews, which the test films lack.
    Padding (id 0) is left alone, so masks are unchanged.
    """

    def __init__(self, rate: float, out_of_vocabulary_id: int = 1, seed: int | None = None, **kw):
        super().__init__(**kw)
        self.rate = rate
        self.out_of_vocabulary_id = out_of_vocabulary_id
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, token_ids, training=False):
        if not training or not self.rate:
            return token_ids
        dropped = keras.random.uniform(ops.shape(token_ids), seed=self.seed_generator) < self.rate
        words = ops.not_equal(token_ids, 0)
        oov = ops.full_like(token_ids, self.out_of_vocabulary_id)
        return ops.where(ops.logical_and(dropped, words), oov, token_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return super().get_config() | {
            "rate": self.rate,
            "out_of_vocabulary_id": self.out_of_vocabulary_id,
            "seed": self.seed,
        }


POOLING_LAYERS = {"max": MaskedGlobalMaxPooling1D, "mean": layers.GlobalAveragePooling1D}


def _summarise(features, pooling: str, dropout: float, name: str):
    """One review's feature vector: the recurrent layer's last output, or pooled over its steps."""
    if pooling != "last":
        features = POOLING_LAYERS[pooling](name=f"{name}_{pooling}_pool")(features)
    if dropout:
        features = layers.Dropout(dropout, name=f"{name}_dropout")(features)
    return features


def build_model(config: ModelConfig) -> keras.Model:
    """An uncompiled sentiment model over (batch, steps) int token ids, any number of steps.

    mask_padding makes the recurrent layers skip padding (id 0): a review then gets the same
    probability however much padding surrounds it, so batches can be cut to their longest review.
    Without it the padding is read as input, as in the tutorial. stock_layers uses Keras' own
    LSTM and Embedding instead of their faster twins (for comparisons; the results agree).

    pooling "last" reads the recurrent layer's final output (the tutorial's model); "max" and
    "mean" pool its outputs over every step of the review. dropout drops that share of embedding
    channels (whole channels per review) and of the pooled features while training;
    word_dropout hides that share of a review's words (as out-of-vocabulary) while training.
    adversarial or virtual_adversarial (training only) normalise the embeddings and add the layer
    a training step perturbs them through (sentiment/adversarial.py).

    merge_mode "none" keeps the two directions apart: each reads the review alone and gives
    its own probability through its own Dense head, and the model outputs their mean, so the
    two directions vote as two independent classifiers. merge_mode is unused when
    bidirectional is false.

    padding (the data's padding side) changes nothing in the model: with cudnn_obstacles it
    decides whether the layers can use cuDNN on a GPU, and a CudnnWarning names the params that
    keep them off it.
    """
    obstacles = cudnn_obstacles(config)
    if gpu_visible():  # without a GPU cuDNN is never used: nothing to warn of
        for reason in obstacles.values():
            warnings.warn(f"no cuDNN on a GPU: {reason}", CudnnWarning, stacklevel=2)
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
        probability = layers.Dense(1, activation="sigmoid", name="probability")(features)
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
            layers.Dense(1, activation="sigmoid", name=f"{direction}_vote")(
                _summarise(features, pooling, dropout, name=direction)
            )
            for direction, features in zip(("forward", "backward"), merged, strict=True)
        ]
        probability = layers.Average(name="probability")(votes)
    else:
        features = _summarise(merged, pooling, dropout, name="bidirectional")
        probability = layers.Dense(1, activation="sigmoid", name="probability")(features)
    return keras.Model(token_ids, probability, name=f"bidirectional_{cell}_{merge_mode}")


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


def model_merge_mode(model: keras.Model) -> str | None:
    """The merge mode a built or loaded model uses ("none" for kept-apart directions)."""
    for layer in nested_layers(model):
        if isinstance(layer, layers.Bidirectional):
            return layer.merge_mode or "none"
    return None
