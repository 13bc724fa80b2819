"""The served model: raw review strings in, positive-class probability out.

The vectoriser repeats `sentiment.text` in TensorFlow ops, so the exported model needs no Python
preprocessing and gives the probabilities the trained model gave on the same reviews.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf
from keras import layers

from sentiment.errors import PipelineError
from sentiment.model import MaskedGlobalMaxPooling1D  # noqa: F401  (registered for loading)
from sentiment.text import LINE_BREAK_PATTERN, NON_TOKEN_PATTERN, PAD_ID

SERVING_SIGNATURE = "serving_default"


@keras.saving.register_keras_serializable(package="sentiment")
class ReviewVectorizer(layers.Layer):
    """Review strings (batch,) -> padded token ids (batch, max_length), as `sentiment.text` does."""

    def __init__(
        self, vocabulary: list[str], max_length: int, padding: str, truncating: str, **kwargs
    ):
        super().__init__(**kwargs)
        self.vocabulary = list(vocabulary)
        self.max_length = max_length
        self.padding = padding
        self.truncating = truncating
        # mask_token "" takes id 0 and the single OOV bucket id 1: the pipeline's own numbering.
        self.lookup = layers.StringLookup(
            vocabulary=self.vocabulary, mask_token="", num_oov_indices=1, name="word_ids"
        )

    def build(self, input_shape=None) -> None:
        self.built = True  # the lookup table is filled from the vocabulary at construction

    def call(self, reviews):
        text = tf.strings.regex_replace(reviews, LINE_BREAK_PATTERN, " ")
        text = tf.strings.lower(text)  # ASCII only, like sentiment.text
        text = tf.strings.regex_replace(text, NON_TOKEN_PATTERN, " ")
        tokens = tf.strings.split(text)  # ragged (batch, words)
        ids = tokens.with_flat_values(tf.cast(self.lookup(tokens.flat_values), tf.int32))
        ids = ids[:, -self.max_length :] if self.truncating == "pre" else ids[:, : self.max_length]
        padded = ids.to_tensor(default_value=PAD_ID, shape=[None, self.max_length])
        if self.padding == "post":
            return padded
        # Shift each row right by its padding: position j takes word j - (max_length - length).
        lengths = tf.cast(ids.row_lengths(), tf.int32)[:, None]
        source = tf.range(self.max_length)[None, :] - (self.max_length - lengths)
        shifted = tf.gather(padded, tf.maximum(source, 0), batch_dims=1)
        return tf.where(source >= 0, shifted, PAD_ID)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.max_length)

    def get_config(self) -> dict:
        return super().get_config() | {
            "vocabulary": self.vocabulary,
            "max_length": self.max_length,
            "padding": self.padding,
            "truncating": self.truncating,
        }


def end_to_end_model(
    classifier: keras.Model,
    vocabulary: list[str],
    *,
    max_length: int,
    padding: str,
    truncating: str,
) -> keras.Model:
    """The trained classifier behind a vectoriser: (batch,) strings -> (batch, 1) probability."""
    reviews = keras.Input(shape=(), dtype="string", name="review")
    token_ids = ReviewVectorizer(vocabulary, max_length, padding, truncating, name="vectorizer")(
        reviews
    )
    return keras.Model(reviews, classifier(token_ids), name="review_sentiment")


def write_saved_model(model: keras.Model, path: Path, *, decision_threshold: float) -> None:
    """A SavedModel whose serving_default takes raw strings and gives probability and label."""
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(reviews):
        probability = model(reviews, training=False)[:, 0]
        label = tf.cast(probability >= decision_threshold, tf.int32)
        return {"probability": probability, "label": label}

    archive.add_endpoint(
        name=SERVING_SIGNATURE,
        fn=serve,
        input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="reviews")],
    )
    archive.write_out(str(path), verbose=False)


def load_exported(path: Path) -> keras.Model:
    """Load an exported end-to-end .keras model in safe mode, refusing files that are not ours."""
    if not path.exists():
        raise PipelineError(f"{path} does not exist: run `dvc repro export` first")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for foreign or damaged files
        raise PipelineError(
            f"{path} is not a model exported by this pipeline ({error.__class__.__name__}): "
            "use models/export/model.keras from `dvc repro export`"
        ) from None
    if not any(isinstance(layer, ReviewVectorizer) for layer in model.layers):
        raise PipelineError(
            f"{path} is a Keras model without this pipeline's review vectoriser: "
            "use models/export/model.keras from `dvc repro export`"
        )
    return model


def check_parity(
    end_to_end: keras.Model,
    classifier: keras.Model,
    texts: list[str],
    token_ids,
    tolerance: float = 1e-5,
) -> float:
    """Largest probability gap between raw-text serving and the preprocessed pipeline.

    Raises if the exported vectoriser and `sentiment.text` disagree on these reviews.
    """
    served = end_to_end.predict(tf.constant(texts), batch_size=256, verbose=0)[:, 0]
    trained = classifier.predict(token_ids, batch_size=256, verbose=0)[:, 0]
    gap = float(abs(served - trained).max()) if len(texts) else 0.0
    if gap > tolerance:
        raise PipelineError(
            f"the exported model differs from the trained one by {gap:.2e} on test reviews "
            f"(tolerance {tolerance:.0e}): the vectoriser and sentiment.text disagree, fix them"
        )
    return gap
