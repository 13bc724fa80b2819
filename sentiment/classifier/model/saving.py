"""Keras model files: the same bytes for the same model, so DVC's hashes mean something; loaded
in safe mode.

A `.keras` file is a zip of metadata.json, config.json and the weights. Keras stamps three things
that change from run to run although the model does not: the save time (metadata and the zip
entries' times) and `shared_object_id`s, which are Python object addresses. They are replaced by
fixed values; loading does not use them beyond matching equal ids.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import keras

# Loading finds the model's own layers by their registered names: importing them registers them.
from sentiment.classifier.model import layers  # noqa: F401
from sentiment.errors import PipelineError
from sentiment.files import ZIP_TIME


def _renumber_shared_objects(config: Any, numbers: dict[int, int]) -> Any:
    """The config with each shared_object_id replaced by its order of first appearance."""
    if isinstance(config, dict):
        return {
            key: numbers.setdefault(value, len(numbers) + 1)
            if key == "shared_object_id"
            else _renumber_shared_objects(value, numbers)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_renumber_shared_objects(item, numbers) for item in config]
    return config


def _normalised(name: str, data: bytes) -> bytes:
    if name == "metadata.json":
        metadata = json.loads(data)
        metadata.pop("date_saved", None)
        return json.dumps(metadata).encode()
    if name == "config.json":
        return json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
    return data


def save_model(model: keras.Model, path: Path) -> None:
    """model.save(path), then rewrite the archive without its run-to-run stamps."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in members:
            stable = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            stable.compress_type = info.compress_type
            stable.external_attr = info.external_attr
            archive.writestr(stable, _normalised(info.filename, data))


def load_trained_model(path: Path) -> keras.Model:
    """Load the train stage's model in Keras safe mode (no arbitrary code from the file)."""
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `dvc repro train` first")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for foreign or damaged files
        raise PipelineError(
            f"{path} is not a model saved by the train stage ({error.__class__.__name__}): "
            "run `dvc repro train`"
        ) from None
