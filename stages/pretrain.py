"""Stage pretrain: the classifier's embedding and recurrent layer learn to predict each word from
its neighbours in the training reviews and the unlabelled texts, to start the train stage."""

import argparse
import time
from pathlib import Path

from sentiment.classifier.data.splits import UNLABELLED_FILE, embedding_rows, load_split
from sentiment.console import log, run_main
from sentiment.files import atomic_output, write_json, write_text
from sentiment.params import ModelConfig, TrainingConfig, load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument(
        "--word-vectors", type=Path, required=True, help="word_vectors' output folder"
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for the weights")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)  # fails on bad params before TensorFlow loads
    epochs = params.pretrain_epochs

    with atomic_output(args.output, directory=True) as output:
        if not epochs:  # nothing to learn: cost nothing
            from sentiment.classifier.training.pretrained import NOT_TRAINED_FILE

            write_text(output / NOT_TRAINED_FILE, "pretrain_epochs is 0: no pretraining\n")
            log("pretrain: pretrain_epochs is 0, nothing to train")
            return
        # Of the params, it reads those STAGE_PARAMS["pretrain"] names, through these configs.
        model_config = ModelConfig.from_params(params, vocab_size=embedding_rows(args.data))
        training_config = TrainingConfig.from_params(params)

        from sentiment.tensorflow_start import run_ops_single_threaded

        run_ops_single_threaded()  # before any module that imports TensorFlow
        from sentiment.classifier.training.language_model import pretrain, save_pretrained
        from sentiment.classifier.training.pretrained import WEIGHTS_FILE
        from sentiment.classifier.training.word_vectors import starting_vectors

        train = load_split(args.data / "train.npz")
        unlabelled = load_split(args.data / UNLABELLED_FILE)
        started = time.perf_counter()
        model, history = pretrain(
            train,
            unlabelled,
            load_split(args.data / "validation.npz"),
            model_config=model_config,
            training_config=training_config,
            epochs=epochs,
            word_vectors=starting_vectors(args.word_vectors, model_config),
        )
        seconds = time.perf_counter() - started
        save_pretrained(model, output / WEIGHTS_FILE)
        write_json(
            output / "history.json",
            {
                "texts": len(train) + len(unlabelled),
                "epochs": epochs,
                "loss": [round(value, 6) for value in history["loss"]],
                "val_loss": [round(value, 6) for value in history["val_loss"]],
            },
        )
    log(
        f"pretrain: {epochs} epochs over {len(train):,} training reviews and "
        f"{len(unlabelled):,} unlabelled texts in {seconds:,.0f} s; validation loss "
        f"{history['val_loss'][0]:.4f} after the first epoch, {history['val_loss'][-1]:.4f} "
        "after the last"
    )


if __name__ == "__main__":
    run_main(main)
