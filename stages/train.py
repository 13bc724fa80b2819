"""Stage train: fit the model from params, logging every epoch with DVCLive; then score the test
split with the saved model, once, for evaluate and export."""

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

from sentiment.classifier.data.splits import (
    UNLABELLED_FILE,
    embedding_rows,
    load_labels,
    load_split,
)
from sentiment.classifier.training.summary import training_summary
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_json
from sentiment.params import ModelConfig, TrainingConfig, check_for_labels, load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument("--model", type=Path, required=True, help="where to save the .keras model")
    parser.add_argument(
        "--scores", type=Path, required=True, help="where to save the test split's probabilities"
    )
    parser.add_argument(
        "--validation-scores",
        type=Path,
        required=True,
        help="where to save the validation split's probabilities",
    )
    parser.add_argument(
        "--word-vectors", type=Path, required=True, help="word_vectors' output folder"
    )
    parser.add_argument("--pretrained", type=Path, required=True, help="pretrain's output folder")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder (it is emptied)")
    parser.add_argument(
        "--platform", type=Path, required=True, help="where to record the platform (JSON)"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)  # fails on bad params before TensorFlow loads
    labels = load_labels(args.data)
    check_for_labels(params, len(labels))
    # The stage reads its params (STAGE_PARAMS["train"]) only through these two configs.
    model_config = ModelConfig.from_params(
        params, vocab_size=embedding_rows(args.data), classes=len(labels)
    )
    training_config = TrainingConfig.from_params(params)

    from sentiment.tensorflow_start import run_ops_single_threaded

    run_ops_single_threaded()  # before any module that imports TensorFlow
    from sentiment.classifier.training.distribution import is_chief

    with contextlib.ExitStack() as scratch:
        if training_config.distribute == "multi_worker" and not is_chief():
            # Another worker of the cluster: it trains with the chief, which writes the results.
            folder = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="train-")))
            args.model, args.live = folder / "model.keras", folder / "live"
            args.platform, args.scores = folder / "platform.json", None
            args.validation_scores = None
            log("train: a worker of the cluster, not its chief: its copy will be discarded")
        fit_and_save(args, model_config, training_config)


def fit_and_save(
    args: argparse.Namespace, model_config: ModelConfig, training_config: TrainingConfig
) -> None:
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    class EpochLog(DVCLiveCallback):
        """DVCLive's callback without its end of the run after each fit: ending rewinds the
        step, and an ensemble fits once per member; the stage ends the run once, below."""

        def on_train_end(self, logs=None) -> None:
            pass

    from sentiment.classifier.model.inference import predict_probabilities, validation_accuracy
    from sentiment.classifier.model.saving import load_trained_model, save_model
    from sentiment.classifier.model.scores import save_scores
    from sentiment.classifier.training.best_epoch import stopping_metrics
    from sentiment.classifier.training.fit import train_model
    from sentiment.classifier.training.pretrained import WEIGHTS_FILE, load_pretrained
    from sentiment.classifier.training.word_vectors import starting_vectors
    from sentiment.proof.platform_record import describe_platform

    train, validation = (
        load_split(args.data / "train.npz"),
        load_split(args.data / "validation.npz"),
    )
    live = Live(str(args.live), dvcyaml=None, save_dvc_exp=False, report=None)
    started = time.perf_counter()
    word_vectors = starting_vectors(args.word_vectors, model_config)
    unlabelled = None
    if training_config.unlabelled_ratio:
        unlabelled = load_split(args.data / UNLABELLED_FILE)
        log(
            f"train: {len(unlabelled):,} unlabelled texts, {training_config.unlabelled_ratio:g} "
            "per labelled review in each step's virtual adversarial term"
        )
    pretrained = None
    if (args.pretrained / WEIGHTS_FILE).exists():
        pretrained = load_pretrained(args.pretrained / WEIGHTS_FILE)
        log("train: the embedding and the recurrent layer start from the pretrain stage's")
    model, history, stops = train_model(
        train=train,
        validation=validation,
        model_config=model_config,
        training_config=training_config,
        word_vectors=word_vectors,
        unlabelled=unlabelled,
        pretrained=pretrained,
        callbacks=[EpochLog(live=live)],
    )
    val_accuracy = history["val_accuracy"][-1]
    if stops or training_config.ensemble > 1 or training_config.weight_averaging:
        # Keras validates each epoch's weights as they stand; the model saved is the best
        # epoch's (early stopping) or an average (over steps, over members, or both), and that
        # is the one to compare configurations on.
        val_accuracy = validation_accuracy(model, validation)
        live.summary["saved_model"] = {"val_accuracy": val_accuracy}
    if stops:
        live.summary["early_stopping"] = stopping_metrics(stops)
    live.end()
    with atomic_output(args.model) as path:  # keeps the .keras suffix Keras insists on
        save_model(model, path)
    write_json(args.platform, describe_platform())
    seconds = time.perf_counter() - started
    epochs_run = (
        sum(stop.epochs_run for stop in stops)
        if stops
        else training_config.epochs * training_config.ensemble
    )
    log(training_summary(len(train) * epochs_run, seconds, val_accuracy, stops))
    if args.scores is not None:
        # The file's own scores: the model as saved, loaded back, as anyone who loads it gets it;
        # the validation split's too, for choosing what ships beside the baseline.
        test = load_split(args.data / "test.npz")
        saved = load_trained_model(args.model)
        save_scores(args.scores, predict_probabilities(saved, test.token_ids))
        save_scores(args.validation_scores, predict_probabilities(saved, validation.token_ids))


if __name__ == "__main__":
    run_main(main)
