"""Stage export: the shipped model on raw text (.keras, SavedModel), a model card, and optionally
TensorFlow Lite; each served form is checked against the model as trained.

What ships is the `ship` param's: the network behind its vectoriser, the baseline's n-gram model
in TensorFlow ops, or both on the same text blended with the weight evaluate chose on the
validation split (metrics/blend.json)."""

import argparse
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sentiment.classifier.data.reviews import read_manifest, test_texts
from sentiment.classifier.data.splits import (
    VOCABULARY_FILE,
    load_split,
    load_vocabulary,
    save_vocabulary,
)
from sentiment.classifier.model.scores import load_scores
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_json
from sentiment.params import stage_params

PARITY_REVIEWS = 512  # test reviews on which raw-text serving must match training-time inputs
TFLITE_PARITY_REVIEWS = 100  # TFLite runs one review at a time: fewer, still every length
BASELINE_TEST_SCORES = "test_scores.npy"  # in the baseline stage's model folder


class Shipped(NamedTuple):
    """A form the export can serve: the end-to-end model on raw strings, the probabilities it
    must give on the test split (its parity reference), and what the model card says of it."""

    model: object  # keras.Model (the stage imports Keras lazily)
    test_scores: np.ndarray
    architecture: str
    card_metrics: dict
    words: int
    classifier: object = None  # the network's own classifier (token ids in), for TFLite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=Path, required=True, help="download's output folder")
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument("--model", type=Path, required=True, help="the trained .keras model")
    parser.add_argument(
        "--scores", type=Path, required=True, help="train's probabilities for the test split"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="evaluate's test metrics")
    parser.add_argument(
        "--blend",
        type=Path,
        required=True,
        help="evaluate's blend metrics: the weight chosen on the validation split, test metrics",
    )
    parser.add_argument(
        "--baseline", type=Path, required=True, help="the baseline stage's model folder"
    )
    parser.add_argument(
        "--baseline-metrics", type=Path, required=True, help="the baseline stage's metrics"
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for the export")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = stage_params("export", args.params)

    from sentiment.tensorflow_start import import_tensorflow

    tf = import_tensorflow()  # quietly, before the modules that import it
    from sentiment.classifier.model.saving import save_model
    from sentiment.classifier.serving import export

    texts = test_texts(args.reviews, PARITY_REVIEWS)
    test = load_split(args.data / "test.npz")
    manifest = read_manifest(args.reviews)
    labels = manifest["labels"]
    if params["ship"] == "baseline":
        shipped = baseline_form(args, len(test), labels)
    elif params["ship"] == "blend":
        shipped = blend_form(args, params, test, labels)
    else:
        shipped = network_form(args, params, len(test), labels)
    trained = shipped.test_scores[: len(texts)]
    served = shipped.model.predict(tf.constant(texts), batch_size=256, verbose=0)
    served = served[:, 0] if served.shape[1] == 1 else served
    gaps = {"raw text": export.check_parity(served, trained, "the raw-text model")}
    card = export.model_card(
        params=params,
        architecture=shipped.architecture,
        manifest=manifest,
        vocabulary_words=shipped.words,
        test_metrics=shipped.card_metrics,
        tflite=params["export_tflite"],
    )
    with atomic_output(args.output, directory=True) as output:
        save_model(shipped.model, output / "model.keras")
        export.write_saved_model(
            shipped.model,
            output / "saved_model",
            decision_threshold=params["decision_threshold"],
            label_names=labels,
        )
        if params["export_tflite"]:  # the network's only: params refuse it with another ship
            export.write_tflite(shipped.classifier, output / "model.tflite", params["max_length"])
            vocabulary = load_vocabulary(args.data / VOCABULARY_FILE)
            save_vocabulary(vocabulary, output / VOCABULARY_FILE)  # the TFLite model's word ids
            few = slice(TFLITE_PARITY_REVIEWS)
            test_ids = test.token_ids[: len(texts)]
            lite = export.tflite_probabilities(output / "model.tflite", test_ids[few])
            gaps["tflite"] = export.check_parity(lite, trained[few], "the TFLite model")
        write_json(output / export.MODEL_CARD, card)
    checks = ", ".join(f"{name} max gap {gap:.1e}" for name, gap in gaps.items())
    what = {"network": "", "baseline": ", the baseline's n-gram model", "blend": ", the blend"}
    log(
        f"export: {args.output}{what[params['ship']]} (parity with the trained model on test "
        f"reviews: {checks})"
    )


def network_form(args: argparse.Namespace, params: dict, reviews: int, labels: list) -> Shipped:
    """The trained network behind its vectoriser."""
    from sentiment.classifier.model.fast_layers import with_stock_layers
    from sentiment.classifier.model.network import architecture
    from sentiment.classifier.model.saving import load_trained_model
    from sentiment.classifier.serving import export

    classifier = load_trained_model(args.model)
    # Served with Keras' own layers (same weights and maths): it needs nothing of this project
    # to load, runs on cuDNN on a GPU, and converts to TensorFlow Lite.
    served_classifier = with_stock_layers(classifier)
    vocabulary = load_vocabulary(args.data / VOCABULARY_FILE)
    end_to_end = export.end_to_end_model(
        served_classifier,
        vocabulary,
        max_length=params["max_length"],
        padding=export.serving_padding(params["padding"], params["mask_padding"]),
        truncating=params["truncating"],
    )
    return Shipped(
        end_to_end,
        load_scores(args.scores, reviews=reviews, labels=len(labels)),
        architecture(classifier),
        export.network_card_metrics(json.loads(args.metrics.read_text()), labels),
        len(vocabulary),
        served_classifier,
    )


def baseline_form(args: argparse.Namespace, reviews: int, labels: list) -> Shipped:
    """The baseline's n-gram model in TensorFlow ops."""
    from sentiment.classifier.model.ngrams import NgramModel
    from sentiment.classifier.serving import export
    from sentiment.classifier.serving.ngram_graph import baseline_end_to_end_model

    baseline = NgramModel.load(args.baseline)
    metrics = json.loads(args.baseline_metrics.read_text())
    scores = load_scores(
        args.baseline / BASELINE_TEST_SCORES, reviews=reviews, labels=len(labels), stage="baseline"
    )
    return Shipped(
        baseline_end_to_end_model(baseline),
        scores,
        export.baseline_architecture(metrics),
        export.card_metrics_of(metrics, labels, reviews),
        len(baseline.words),
    )


def blend_form(args: argparse.Namespace, params: dict, test, labels: list) -> Shipped:
    """Both models on the same text, their probabilities blended in log-odds with the network's
    weight evaluate chose on the validation split (metrics/blend.json)."""
    from sentiment.classifier.model.blend import SHIPPED_COMBINATION, blend, weight_meaning
    from sentiment.classifier.serving import export
    from sentiment.classifier.serving.blend_graph import blend_end_to_end_model

    network = network_form(args, params, len(test), labels)
    baseline = baseline_form(args, len(test), labels)
    metrics = json.loads(args.blend.read_text())
    weight = metrics["weight"]
    scores = blend(network.test_scores, baseline.test_scores, weight, SHIPPED_COMBINATION)
    architecture = (
        f"blend of the network (weight {weight:g}) and the baseline "
        f"(weight {round(1 - weight, 2):g}): {weight_meaning(weight)}; the weight chosen on the "
        f"validation split (accuracy {metrics['validation_accuracy']:.4f}); network: "
        f"{network.architecture}; baseline: {baseline.architecture}"
    )
    model = blend_end_to_end_model(
        network.model, baseline.model, weight=weight, combination=SHIPPED_COMBINATION
    )
    card_metrics = export.card_metrics_of(metrics, labels, len(test)) | {
        "blend_weight": weight,
        "validation_accuracy": metrics["validation_accuracy"],
    }
    return Shipped(model, scores.astype(np.float32), architecture, card_metrics, baseline.words)


if __name__ == "__main__":
    run_main(main)
