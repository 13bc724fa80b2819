"""Private Keras and TensorFlow APIs: all behind one module, present, and undone."""

import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from sentiment.classifier.model import private_apis
from sentiment.classifier.model.network import build_model
from sentiment.params import ModelConfig, Params
from tests.conftest import PROJECT_ROOT

PRIVATE_USE = re.compile(r"keras\.src|tensorflow\.python|raw_ops|\._symbolic_build|\binner_loop\b")


def test_no_module_but_private_apis_uses_a_private_api():
    door = Path(private_apis.__file__).resolve()
    files = [
        path
        for folder in ("sentiment", "stages", "tests")
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if path.resolve() != door and path.name != "test_private_apis.py"
    ]
    assert len(files) > 50  # the walk reaches into the subpackages
    users = [
        str(path.relative_to(PROJECT_ROOT))
        for path in files
        if PRIVATE_USE.search(path.read_text())
    ]
    assert users == [], f"private Keras/TensorFlow APIs outside {door.name}: {users}"


def test_every_private_api_used_is_in_the_installed_versions():
    assert private_apis.missing_private_apis() == []


def test_the_installed_versions_are_the_ones_private_apis_was_checked_against():
    # On an upgrade: re-check each entry of private_apis.py, then update CHECKED_WITH.
    assert {"tensorflow": tf.__version__, "keras": keras.__version__} == private_apis.CHECKED_WITH


def _compiled_model() -> keras.Model:
    params = Params().replace(embedding_dim=4, units=3)
    model = build_model(ModelConfig.from_params(params, vocab_size=30))
    model.compile("adam", "binary_crossentropy")
    return model


def test_the_multi_worker_patch_is_undone_when_its_context_ends():
    from keras.src.backend.tensorflow import trainer

    keras_reduce = trainer.reduce_per_replica
    model = _compiled_model()
    batch = (np.arange(20).reshape(2, 10) % 29 + 1, np.array([[0.0], [1.0]]))
    with private_apis.multi_worker_fit(model, batch):
        assert trainer.reduce_per_replica is not keras_reduce
        assert model.built  # built from the local batch, not from a distributed one
    assert trainer.reduce_per_replica is keras_reduce
    assert "_maybe_symbolic_build" not in vars(model)  # Keras' own method again


def test_the_multi_worker_patch_is_undone_when_fit_fails():
    from keras.src.backend.tensorflow import trainer

    keras_reduce = trainer.reduce_per_replica
    batch = (np.ones((2, 5), dtype="int32"), np.zeros((2, 1)))
    with pytest.raises(RuntimeError), private_apis.multi_worker_fit(_compiled_model(), batch):
        raise RuntimeError("fit failed")
    assert trainer.reduce_per_replica is keras_reduce
