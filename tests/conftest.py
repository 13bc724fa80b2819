"""Shared fixtures: the real pipeline shrunk to synthetic data that trains in seconds."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest
import yaml

from sentiment.data import make_synthetic
from sentiment.params import Params
from sentiment.preprocessing import prepare_splits

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The tutorial's pipeline on a small synthetic dataset: learnt to >95% test accuracy in seconds.
SMALL_PARAMS = {
    "dataset": "synthetic",
    "synthetic_reviews": 1000,
    "vocab_size": 200,
    "max_length": 100,
    "embedding_dim": 16,
    "units": 16,
    "learning_rate": 0.01,
    "batch_size": 32,
    "epochs": 8,
}


def write_params(path: Path, **overrides) -> Path:
    """A complete params.yaml (DVC needs every declared key) with the given overrides."""
    values = dataclasses.asdict(Params()) | overrides
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


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


@pytest.fixture(scope="session")
def trained_model(small_data):
    """The default model trained on the small synthetic data (once per test session)."""
    from sentiment.training import train_model

    splits, vocabulary = small_data
    model, _ = train_model(
        train=splits["train"],
        validation=splits["validation"],
        vocab_size=len(vocabulary) + 2,
        seed=42,
        embedding_dim=SMALL_PARAMS["embedding_dim"],
        cell="lstm",
        units=SMALL_PARAMS["units"],
        bidirectional=True,
        merge_mode="sum",
        backward_cell="same",
        optimizer="adam",
        learning_rate=SMALL_PARAMS["learning_rate"],
        batch_size=SMALL_PARAMS["batch_size"],
        epochs=SMALL_PARAMS["epochs"],
        verbose=0,
    )
    return model
