"""Shared fixtures: the real pipeline shrunk to synthetic data that trains in seconds."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sentiment.classifier.data.preprocessing import prepare_splits
from sentiment.classifier.data.synthetic import make_synthetic
from sentiment.classifier.data.text import FIRST_WORD_ID, OOV_ID, pad, tokenize
from sentiment.params import ModelConfig, Params, TrainingConfig
from sentiment.proof.project_copy import PROJECT_ROOT, copy_project, project_env, write_params

__all__ = ["PROJECT_ROOT", "project_env", "write_params"]  # the tests import them from here

# The tutorial's pipeline on a small synthetic dataset: learnt to >95% test accuracy in seconds.
# A masked model first sits at the bag-of-words plateau (about 70%) until it learns negation and
# late turns; with 1,600 training reviews in batches of 16 it got there by epoch 4 for every seed
# and data order tried (with fewer reviews or larger batches, some stayed there for 8 epochs).
SMALL_PARAMS = {
    "dataset": "synthetic",
    "synthetic_reviews": 2000,
    "vocab_size": 200,
    "max_length": 100,
    "embedding_dim": 16,
    "units": 16,
    "pooling": "last",
    "learning_rate": 0.01,
    "batch_size": 16,
    "epochs": 8,
    "patience": 0,  # a fixed 8 epochs, the tutorial's training (tests/test_early_stopping.py: on)
    "dropout": 0.0,
}
MAX_LENGTH = 100  # the exported fixture's max_length


def die_as_killed(task) -> None:
    """A task whose process is killed mid-work, as the out-of-memory killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


def vectorize_texts(
    texts: list[str], vocabulary: list[str], **shape
) -> tuple[np.ndarray, np.ndarray]:
    """Padded token ids and lengths of raw texts, as preprocess makes them (shape: max_length,
    padding, truncating): word i of the vocabulary is id i + 2, any other word OOV_ID."""
    ids = {word: index + FIRST_WORD_ID for index, word in enumerate(vocabulary)}
    sequences = [[ids.get(word, OOV_ID) for word in tokenize(text)] for text in texts]
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int32)
    return pad(sequences, **shape), lengths


def compare(validation, test, ship="blend", label_names=("negative", "positive")):
    """The three models compared (evaluation/shipped.py) from (network, baseline, labels) on the
    validation and the test split."""
    from sentiment.classifier.evaluation.shipped import compare_models

    (network, baseline, labels), (test_network, test_baseline, test_labels) = validation, test
    return compare_models(
        (network, test_network),
        (baseline, test_baseline),
        labels,
        test_labels,
        ship=ship,
        decision_threshold=0.5,
        label_names=list(label_names),
    )


def planted_comparison(labels: np.ndarray, network: np.ndarray, label_names, ship="blend"):
    """compare() where the network gives `network` on both splits and the baseline is its
    probabilities pulled half-way to uniform."""
    split = (network, (network + 1 / len(label_names)) / 2, labels)
    return compare(split, split, ship=ship, label_names=label_names)


def make_project(repo: Path, **param_overrides) -> tuple[Path, Callable[..., str]]:
    """A copy of the project in a fresh git + DVC repository with SMALL_PARAMS (and overrides).

    Returns the folder and run(*command), which fails the test if the command fails.
    """
    copy_project(repo, **(SMALL_PARAMS | param_overrides))
    env = project_env()

    def run(*command: str) -> str:
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    return repo, run


def dvc(run: Callable[..., str], *args: str) -> str:
    """A DVC command through make_project's run."""
    return run(sys.executable, "-m", "dvc", *args)


def make_aclimdb_archive(path: Path, reviews: dict[str, list[tuple[str, int]]], **extra) -> Path:
    """A tar.gz in aclImdb's layout; `extra` adds members by name (for hostile archives)."""
    with tarfile.open(path, "w:gz") as tar:
        members = {}
        for split, items in reviews.items():
            for index, (text, label) in enumerate(items):
                folder = "pos" if label else "neg"
                members[f"aclImdb/{split}/{folder}/{index}_7.txt"] = text.encode()
        members |= {name: data for name, data in extra.items()}
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def small_data():
    """(splits, vocabulary) of the synthetic dataset under SMALL_PARAMS."""
    reviews = make_synthetic(SMALL_PARAMS["synthetic_reviews"])
    return prepare_splits(
        reviews,
        vocab_size=SMALL_PARAMS["vocab_size"],
        max_length=SMALL_PARAMS["max_length"],
        padding="pre",
        truncating="pre",
        validation_split=0.2,
        seed=42,
    )


def small_configs(vocab_size: int, **overrides) -> tuple[ModelConfig, TrainingConfig]:
    """The model and training configs of SMALL_PARAMS (and overrides), as the train stage builds."""
    params = Params().replace(**(SMALL_PARAMS | overrides))
    return ModelConfig.from_params(params, vocab_size=vocab_size), TrainingConfig.from_params(
        params
    )


@pytest.fixture(scope="session")
def trained_model(small_data):
    """The default model trained on the small synthetic data (once per test session)."""
    from sentiment.classifier.training.fit import train_model

    splits, vocabulary = small_data
    model_config, training_config = small_configs(len(vocabulary) + 2)
    model, _, _ = train_model(
        train=splits["train"],
        validation=splits["validation"],
        model_config=model_config,
        training_config=training_config,
        verbose=0,
    )
    return model


@pytest.fixture(scope="session")
def exported(small_data, trained_model, tmp_path_factory):
    """An export folder as the stage writes it: .keras, SavedModel, TFLite and model card."""
    from sentiment.classifier.model.fast_layers import with_stock_layers
    from sentiment.classifier.model.network import architecture
    from sentiment.classifier.model.saving import save_model
    from sentiment.classifier.serving import export
    from sentiment.params import Params

    _, vocabulary = small_data
    served_classifier = with_stock_layers(trained_model)
    padding = export.serving_padding("pre", mask_padding=True)  # trained pre-padded
    model = export.end_to_end_model(
        served_classifier, vocabulary, max_length=MAX_LENGTH, padding=padding, truncating="pre"
    )
    folder = tmp_path_factory.mktemp("export")
    save_model(model, folder / "model.keras")
    export.write_saved_model(
        model, folder / "saved_model", decision_threshold=0.5, label_names=["negative", "positive"]
    )
    export.write_tflite(served_classifier, folder / "model.tflite", MAX_LENGTH)
    card = export.model_card(
        params=vars(Params()) | {"max_length": MAX_LENGTH},
        architecture=architecture(trained_model),
        manifest={
            "dataset": "synthetic",
            "labels": ["negative", "positive"],
            "splits": {"train": {"fingerprint": "f" * 64}},
        },
        vocabulary_words=len(vocabulary),
        test_metrics=export.network_card_metrics(
            {
                "accuracy": 0.9,
                "roc_auc": 0.95,
                "log_loss": 0.3,
                "reviews": 10,
                "report": {"positive": {"f1-score": 0.9}},
            },
            ["negative", "positive"],
        ),
        tflite=True,
    )
    (folder / export.MODEL_CARD).write_text(json.dumps(card))
    return model, folder


def serve_in_fresh_process(saved_model: Path, texts: list[str]) -> dict:
    """A SavedModel's serving_default on texts, run in a fresh Python where any import of this
    package fails: {"probabilities": [[...]], "label": [...]}."""
    script = (
        "import json, sys\n"
        "sys.modules['sentiment'] = None  # any import of the package now fails\n"
        "import tensorflow as tf\n"
        "serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "out = serve(reviews=tf.constant(json.loads(sys.argv[2])))\n"
        "print(json.dumps({'probabilities': out['probabilities'].numpy().tolist(),\n"
        "                  'label': out['label'].numpy().astype(str).tolist()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(saved_model), json.dumps(texts)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
