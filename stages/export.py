"""Stage export: the shipped model on raw text (.keras, SavedModel), a model card, and optionally
TensorFlow Lite; each served form is checked against the model as trained.

What ships is the `ship` param's: the network behind its vectoriser, or the baseline's n-gram
model in TensorFlow ops."""

import argparse
import json
from pathlib import Path

from sentiment.classifier.data.reviews import read_manifest, test_texts
from sentiment.classifier.data.splits import (
    VOCABULARY_FILE,
    load_labels,
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
    label_count = len(load_labels(args.data))
    if params["ship"] == "baseline":
        from sentiment.classifier.model.ngrams import NgramModel
        from sentiment.classifier.serving.ngram_graph import baseline_end_to_end_model

        baseline = NgramModel.load(args.baseline)
        metrics = json.loads(args.baseline_metrics.read_text())
        end_to_end = baseline_end_to_end_model(baseline)
        trained = load_scores(
            args.baseline / BASELINE_TEST_SCORES,
            reviews=len(test),
            labels=label_count,
            stage="baseline",
        )
        architecture = export.baseline_architecture(metrics)
        card_metrics = export.baseline_card_metrics(metrics, manifest["labels"], len(test))
        words, served_classifier, vocabulary = len(baseline.words), None, None
    else:
        from sentiment.classifier.model.fast_layers import with_stock_layers
        from sentiment.classifier.model.network import architecture as network_architecture
        from sentiment.classifier.model.saving import load_trained_model

        classifier = load_trained_model(args.model)
        # Served with Keras' own layers (same weights and maths): it needs nothing of this
        # project to load, runs on cuDNN on a GPU, and converts to TensorFlow Lite.
        served_classifier = with_stock_layers(classifier)
        vocabulary = load_vocabulary(args.data / VOCABULARY_FILE)
        end_to_end = export.end_to_end_model(
            served_classifier,
            vocabulary,
            max_length=params["max_length"],
            padding=export.serving_padding(params["padding"], params["mask_padding"]),
            truncating=params["truncating"],
        )
        trained = load_scores(args.scores, reviews=len(test), labels=label_count)
        architecture = network_architecture(classifier)
        card_metrics = export.network_card_metrics(
            json.loads(args.metrics.read_text()), manifest["labels"]
        )
        words = len(vocabulary)
    trained = trained[: len(texts)]
    served = end_to_end.predict(tf.constant(texts), batch_size=256, verbose=0)
    served = served[:, 0] if served.shape[1] == 1 else served
    gaps = {"raw text": export.check_parity(served, trained, "the raw-text model")}
    card = export.model_card(
        params=params,
        architecture=architecture,
        manifest=manifest,
        vocabulary_words=words,
        test_metrics=card_metrics,
        tflite=params["export_tflite"],
    )
    with atomic_output(args.output, directory=True) as output:
        save_model(end_to_end, output / "model.keras")
        export.write_saved_model(
            end_to_end,
            output / "saved_model",
            decision_threshold=params["decision_threshold"],
            label_names=manifest["labels"],
        )
        if params["export_tflite"]:  # the network's only: params refuse it with the baseline
            export.write_tflite(served_classifier, output / "model.tflite", params["max_length"])
            save_vocabulary(vocabulary, output / VOCABULARY_FILE)  # the TFLite model's word ids
            few = slice(TFLITE_PARITY_REVIEWS)
            test_ids = test.token_ids[: len(texts)]
            lite = export.tflite_probabilities(output / "model.tflite", test_ids[few])
            gaps["tflite"] = export.check_parity(lite, trained[few], "the TFLite model")
        write_json(output / export.MODEL_CARD, card)
    checks = ", ".join(f"{name} max gap {gap:.1e}" for name, gap in gaps.items())
    shipped = ", the baseline's n-gram model" if params["ship"] == "baseline" else ""
    log(f"export: {args.output}{shipped} (parity with the trained model on test reviews: {checks})")


if __name__ == "__main__":
    run_main(main)
