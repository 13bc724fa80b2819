"""The export a server serves, and a newer one taken in without dropping a request.

`ModelSlot` holds the loaded export. `reload_if_changed` notices a changed export folder (a new
`dvc repro`, a `dvc checkout`) by its fingerprint (the model card's bytes, the SavedModel's files'
sizes and times), loads the new export beside the old one, checks it (our model card, our
signature, a probe that scores two texts into probabilities that sum to one), and only then swaps
it in: batches already running finish on the old model. A broken new export is refused (the reason
logged, the old one serving on) and not tried again until the folder changes again.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentiment.errors import PipelineError

PROBE_TEXTS = ["a wonderful, moving film", "dull, and far too long"]
Outputs = Callable[[list[str]], tuple[np.ndarray, list[str]]]


@dataclass(frozen=True)
class LoadedModel:
    """One loaded export: its scorer, model card, fingerprint, version and load time."""

    outputs: Outputs
    card: dict
    signature_defs: dict  # the SavedModel's SignatureDefMap, as TensorFlow Serving's metadata
    fingerprint: str
    version: int  # 1, then 2, 3, ... for each export taken in
    load_seconds: float

    @property
    def labels(self) -> list[str]:
        return list(self.card["labels"])


def fingerprint(folder: Path) -> str:
    """What changes when the export changes: the model card's bytes, and the name, size and
    modification time of every file of the SavedModel."""
    digest = hashlib.sha256()
    try:
        digest.update((folder / "model_card.json").read_bytes())
        for path in sorted((folder / "saved_model").rglob("*")):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)} {stat.st_size} {stat.st_mtime_ns}".encode())
    except OSError as error:
        digest.update(f"unreadable: {error}".encode())
    return digest.hexdigest()


def signature_defs(saved_model: Path) -> dict:
    """The SavedModel's signatures as TensorFlow Serving's metadata endpoint writes them (the
    SignatureDef protos in JSON, field names as in the proto)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model / "saved_model.pb").read_bytes())
    return {
        name: json_format.MessageToDict(definition, preserving_proto_field_name=True)
        for name, definition in proto.meta_graphs[0].signature_def.items()
    }


def load_export(folder: Path, version: int) -> LoadedModel:
    """Load and check an export folder; PipelineError, in one line, if it is not one of ours or
    does not score."""
    from sentiment.classifier.serving.export import load_serving_outputs

    started = time.perf_counter()
    seen = fingerprint(folder)
    outputs, card = load_serving_outputs(folder)
    try:
        probabilities, labels = outputs(PROBE_TEXTS)
    except Exception as error:
        raise PipelineError(
            f"{folder}'s model fails on a probe ({error.__class__.__name__}): export again"
        ) from None
    sums = probabilities.sum(axis=1)
    if probabilities.shape != (len(PROBE_TEXTS), len(card["labels"])) or not np.allclose(sums, 1):
        raise PipelineError(
            f"{folder}'s model gives probabilities of shape {probabilities.shape} for "
            f"{len(card['labels'])} labels: export again"
        )
    if any(label not in card["labels"] for label in labels):
        raise PipelineError(f"{folder}'s model names labels its model card does not: export again")
    definitions = signature_defs(folder / "saved_model")
    return LoadedModel(outputs, card, definitions, seen, version, time.perf_counter() - started)


def one_line(error: Exception) -> str:
    """An error as one line: ours as they are, any other with its type."""
    if isinstance(error, PipelineError):
        return str(error)
    first = (str(error).splitlines() or [""])[0]
    return f"{error.__class__.__name__}: {first}" if first else error.__class__.__name__


class ModelSlot:
    """The model being served, swapped whole when a newer export loads and checks."""

    def __init__(self, folder: Path, log: Callable[[str], object] = print):
        self.folder, self.log = folder, log
        self.current: LoadedModel | None = None
        self.refused: str | None = None  # the fingerprint of the last export refused
        self.reloads = {"loaded": 0, "refused": 0}
        self._lock = threading.Lock()

    def load_first(self) -> LoadedModel:
        self.current = load_export(self.folder, version=1)
        return self.current

    def reload_if_changed(self, force: bool = False) -> bool:
        """Take in a changed export (or, with force, the folder's export even if it looks the
        same); True if a new model now serves. Runs in a worker thread: loading takes seconds."""
        with self._lock:
            seen = fingerprint(self.folder)
            current = self.current
            unchanged = current is not None and seen == current.fingerprint
            if (unchanged or seen == self.refused) and not force:
                return False
            version = (current.version if current else 0) + 1
            try:
                loaded = load_export(self.folder, version)
            except Exception as error:  # whatever breaks the new export, the old one serves on
                self.refused = seen
                self.reloads["refused"] += 1
                self.log(
                    f"serve: the export in {self.folder} is refused, the old one serves on: "
                    f"{one_line(error)}"
                )
                return False
            self.current, self.refused = loaded, None
            self.reloads["loaded"] += 1
            self.log(
                f"serve: version {version} of {self.folder} serves now "
                f"(loaded in {loaded.load_seconds:.1f} s)"
            )
            return True

    def outputs(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        """Score with whichever model serves when the batch starts."""
        current = self.current
        if current is None:
            raise RuntimeError("no model is loaded")
        return current.outputs(texts)
