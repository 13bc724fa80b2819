"""The served model: raw review strings in, each label's probability and the predicted label out.

The vectoriser repeats `sentiment.classifier.data.text` in TensorFlow ops, so the exported model
needs no Python preprocessing and gives the probabilities the trained model gave on the same
reviews.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from sentiment.classifier.data.text import PAD_ID

# Loading an export finds the model's own layers by their registered names: importing registers.
from sentiment.classifier.model import layers as model_layers  # noqa: F401
from sentiment.classifier.model.private_apis import freeze_variables
from sentiment.classifier.serving.blend_graph import Blend
from sentiment.classifier.serving.ngram_graph import NgramScorer, tokens_of
from sentiment.errors import PipelineError
from sentiment.tools import tool_output

SERVING_SIGNATURE = "serving_default"
MODEL_CARD = "model_card.json"
PIPELINE = "imdb-bilstm-pipeline"  # what a model card must name for a folder to be ours


@keras.saving.register_keras_serializable(package="sentiment")
class ReviewVectorizer(layers.Layer):
    """Review strings (batch,) -> padded token ids (batch, max_length), as `data.text` does."""

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
        tokens = tokens_of(reviews)  # ragged (batch, words)
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


def serving_padding(padding: str, mask_padding: bool) -> str:
    """Where the served model's vectoriser puts padding.

    A masked model gives a review the same probability wherever its padding is (tested), and
    padding on the right is the one mask layout cuDNN reads, so a masked model is served
    right-padded and runs on cuDNN on a GPU. An unmasked model reads its padding: as trained.
    """
    return "post" if mask_padding else padding


def end_to_end_model(
    classifier: keras.Model,
    vocabulary: list[str],
    *,
    max_length: int,
    padding: str,
    truncating: str,
) -> keras.Model:
    """The trained classifier behind a vectoriser: (batch,) strings -> the classifier's output,
    the positive label's probability (batch, 1) or each label's (batch, N)."""
    reviews = keras.Input(shape=(), dtype="string", name="review")
    token_ids = ReviewVectorizer(vocabulary, max_length, padding, truncating, name="vectorizer")(
        reviews
    )
    return keras.Model(reviews, classifier(token_ids), name="review_sentiment")


def label_probabilities(output: tf.Tensor) -> tf.Tensor:
    """Each label's probability (batch, N) from a classifier's output: a two-label model's
    (batch, 1) positive-label probability becomes (1 - p, p)."""
    if output.shape[-1] == 1:
        return tf.concat([1.0 - output, output], axis=1)
    return output


def write_saved_model(
    model: keras.Model, path: Path, *, decision_threshold: float, label_names: list[str]
) -> None:
    """A SavedModel whose serving_default takes raw strings and gives each label's probability
    (in label_names' order) and the predicted label's name.

    With two labels the second is predicted at or above decision_threshold; with more, the
    likeliest.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    names = tf.constant(label_names)

    def serve(reviews):
        probabilities = label_probabilities(model(reviews, training=False))
        if len(label_names) == 2:
            predicted = tf.cast(probabilities[:, 1] >= decision_threshold, tf.int32)
        else:
            predicted = tf.argmax(probabilities, axis=1, output_type=tf.int32)
        return {"probabilities": probabilities, "label": tf.gather(names, predicted)}

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
    ours = (ReviewVectorizer, NgramScorer, Blend)
    if not any(isinstance(layer, ours) for layer in model.layers):
        raise PipelineError(
            f"{path} is a Keras model without this pipeline's review vectoriser: "
            "use models/export/model.keras from `dvc repro export`"
        )
    return model


def read_model_card(folder: Path) -> dict:
    """The model card of an export folder; refuses a folder this pipeline did not write."""
    card_path = folder / MODEL_CARD
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        card = None
    if not isinstance(card, dict) or card.get("pipeline") != PIPELINE:
        raise PipelineError(
            f"{folder} has no model card of this pipeline ({MODEL_CARD}): it was not exported "
            "by `dvc repro export`; use models/export"
        )
    return card


def load_serving_signature(folder: Path) -> tuple[Callable[[list[str]], np.ndarray], dict]:
    """An export folder's serving_default as texts -> each label's probabilities (n, N), and its
    model card.

    Refuses a folder without our model card, and a SavedModel whose signature is not ours.
    """
    serve, card = load_serving_outputs(folder)

    def probabilities(texts: list[str]) -> np.ndarray:
        return serve(texts)[0]

    return probabilities, card


def load_serving_outputs(
    folder: Path,
) -> tuple[Callable[[list[str]], tuple[np.ndarray, list[str]]], dict]:
    """An export folder's serving_default as texts -> (each label's probabilities (n, N), each
    text's predicted label name), and its model card; refused as load_serving_signature says."""
    if not folder.is_dir():
        raise PipelineError(f"{folder} is not an export folder: run `dvc repro export` first")
    card = read_model_card(folder)
    try:
        serve = tf.saved_model.load(str(folder / "saved_model")).signatures[SERVING_SIGNATURE]
    except (OSError, KeyError, ValueError, tf.errors.OpError) as error:
        raise PipelineError(
            f"{folder / 'saved_model'} is not a loadable SavedModel with {SERVING_SIGNATURE} "
            f"({error.__class__.__name__}): export again with `dvc repro export`"
        ) from None
    _, inputs = serve.structured_input_signature
    outputs = serve.structured_outputs
    expected = {"reviews": tf.TensorSpec(shape=(None,), dtype=tf.string, name="reviews")}
    if inputs != expected or set(outputs) != {"probabilities", "label"}:
        raise PipelineError(
            f"{folder}'s {SERVING_SIGNATURE} takes {sorted(inputs)} and gives {sorted(outputs)}, "
            "not this pipeline's reviews -> probabilities, label: export again"
        )

    def outputs_of(texts: list[str]) -> tuple[np.ndarray, list[str]]:
        served = serve(reviews=tf.constant(texts, dtype=tf.string))
        labels = [label.decode("utf-8") for label in served["label"].numpy()]
        return served["probabilities"].numpy(), labels

    return outputs_of, card


def network_card_metrics(test_metrics: dict, labels: list[str]) -> dict:
    """The model card's test metrics of the network, from evaluate's metrics/test.json."""
    f1_of = labels[1] if len(labels) == 2 else "macro avg"
    return {key: test_metrics[key] for key in ("accuracy", "roc_auc", "log_loss", "reviews")} | {
        f"f1_{f1_of.replace(' ', '_')}": test_metrics["report"][f1_of.replace(" ", "_")]["f1-score"]
    }


def card_metrics_of(metrics: dict, labels: list[str], reviews: int) -> dict:
    """The model card's test metrics of the baseline or the blend, from their metrics files
    (metrics/baseline.json, metrics/blend.json): the same keys as the network's (the F1 is the
    positive label's, or the macro average)."""
    f1_of = labels[1] if len(labels) == 2 else "macro avg"
    return {key: metrics[key] for key in ("accuracy", "roc_auc", "log_loss")} | {
        "reviews": reviews,
        f"f1_{f1_of.replace(' ', '_')}": metrics["f1"],
    }


def baseline_architecture(metrics: dict) -> str:
    """The baseline's model in one line, as the model card names it."""
    return (
        f"NBSVM baseline: binary n-grams of 1 to {metrics['longest_ngram']} words "
        f"({metrics['features']:,} kept), naive-Bayes log-count ratios times a logistic "
        f"regression's coefficients (C = {metrics['regularisation']:g}), one-vs-rest for more "
        "than two labels"
    )


def model_card(
    *,
    params: dict,
    architecture: str,
    manifest: dict,
    vocabulary_words: int,
    test_metrics: dict,
    tflite: bool,
) -> dict:
    """Everything that traces a served model back to the run and the commit that made it.

    architecture: the shipped model in one line (`model.network.architecture`, or
    `baseline_architecture`); manifest: download's (the dataset, its labels in order, sizes and
    fingerprints); test_metrics: the shipped model's (`network_card_metrics` or
    `card_metrics_of`).
    """
    commit = _git("rev-parse", "HEAD")
    changed = _git("status", "--porcelain", "--untracked-files=no")
    labels = list(manifest["labels"])
    binary = len(labels) == 2
    keras_output = "probability of the second label (batch, 1)" if binary else "each label's "
    keras_output += "" if binary else f"probability (batch, {len(labels)})"
    tflite_output = "probability (1, 1)" if binary else f"probabilities (1, {len(labels)})"
    return {
        "pipeline": PIPELINE,
        "model": architecture,
        "labels": labels,
        **({"positive_label": labels[1]} if binary else {}),
        "params": params,
        "data": manifest,
        "shipped": params.get("ship", "network"),
        "vocabulary_words": vocabulary_words,
        "test_metrics": test_metrics,
        "serving": {
            "saved_model": f"saved_model/, signature {SERVING_SIGNATURE}: reviews (batch of "
            f"strings) -> probabilities (batch, {len(labels)}) float32 in the labels' order, "
            "label (batch,) string: the predicted label's name",
            "keras": f"model.keras: strings (batch,) -> {keras_output}",
            "decision_threshold": params["decision_threshold"],
        }
        | (
            {
                "tflite": "model.tflite: token ids (1, max_length) int32, words numbered by "
                "vocabulary.txt (line i = id i + 2; 0 padding, 1 unknown), padded and truncated "
                f"as params say -> {tflite_output}"
            }
            if tflite
            else {}
        ),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "git_commit": commit or "unknown (not a git checkout)",
        "git_worktree_clean": commit is not None and not changed,
    }


def _git(*args: str) -> str | None:
    output = tool_output(["git", *args])
    return output.decode().strip() if output is not None else None


def write_tflite(classifier: keras.Model, path: Path, max_length: int) -> None:
    """The classifier as TensorFlow Lite over one review's (1, max_length) padded token ids.

    Built from Keras' own layers with the weights frozen into constants, the recurrent loop
    converts to TFLite's builtin WHILE: no TensorFlow select ops are needed. The text
    vectoriser stays outside (its regex and string ops would need select ops, which the
    TensorFlow 2.21 pip package's interpreter no longer runs).
    """

    @tf.function(input_signature=[tf.TensorSpec((1, max_length), tf.int32, name="token_ids")])
    def classify(token_ids):
        return classifier(token_ids, training=False)

    frozen = freeze_variables(classify.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path.write_bytes(converter.convert())


def tflite_probabilities(path: Path, token_ids: np.ndarray) -> np.ndarray:
    """Run a model.tflite from `write_tflite` on padded token ids, one review at a time: the
    positive label's probabilities (n,) for a two-label model, each label's (n, N) for more."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = int(target["shape"][-1])
    probabilities = np.empty((len(token_ids), outputs), dtype=np.float32)
    for row, review in enumerate(np.asarray(token_ids, dtype=np.int32)):
        interpreter.set_tensor(source["index"], review[None, :])
        interpreter.invoke()
        probabilities[row] = interpreter.get_tensor(target["index"])[0]
    return probabilities[:, 0] if outputs == 1 else probabilities


def check_parity(served: np.ndarray, trained: np.ndarray, what: str, tolerance: float = 1e-5):
    """Largest probability gap between a served form and the trained model, of any shape;
    raises if too big."""
    gap = float(np.abs(np.asarray(served) - np.asarray(trained)).max()) if len(served) else 0.0
    if gap > tolerance:
        raise PipelineError(
            f"{what} differs from the trained model by {gap:.2e} on test reviews (tolerance "
            f"{tolerance:.0e}): the export does not serve what was trained, fix it"
        )
    return gap
