"""Private Keras and TensorFlow APIs: all behind sentiment/internals.py, present, and undone."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from sentiment import internals
from sentiment.model import build_model
from sentiment.params import ModelConfig, Params
from tests.conftest import PROJECT_ROOT

PRIVATE_USE = re.compile(r"keras\.src|tensorflow\.python|raw_ops|\._symbolic_build|\binner_loop\b")


def test_no_module_but_internals_uses_a_private_api():
    files = [
        path
        for folder in ("sentiment", "stages", "tests")
        for path in sorted((PROJECT_ROOT / folder).glob("*.py"))
        if path.name not in ("internals.py", "test_internals.py")
    ]
    users = [
        str(path.relative_to(PROJECT_ROOT))
        for path in files
        if PRIVATE_USE.search(path.read_text())
    ]
    assert users == [], f"private Keras/TensorFlow APIs outside sentiment/internals.py: {users}"


def test_every_private_api_used_is_in_the_installed_versions():
    assert internals.missing_private_apis() == []


def test_the_installed_versions_are_the_ones_internals_was_checked_against():
    # On an upgrade: re-check each entry of sentiment/internals.py, then update CHECKED_WITH.
    assert {"tensorflow": tf.__version__, "keras": keras.__version__} == internals.CHECKED_WITH


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
    with internals.multi_worker_fit(model, batch):
        assert trainer.reduce_per_replica is not keras_reduce
        assert model.built  # built from the local batch, not from a distributed one
    assert trainer.reduce_per_replica is keras_reduce
    assert "_maybe_symbolic_build" not in vars(model)  # Keras' own method again


def test_the_multi_worker_patch_is_undone_when_fit_fails():
    from keras.src.backend.tensorflow import trainer

    keras_reduce = trainer.reduce_per_replica
    batch = (np.ones((2, 5), dtype="int32"), np.zeros((2, 1)))
    with pytest.raises(RuntimeError), internals.multi_worker_fit(_compiled_model(), batch):
        raise RuntimeError("fit failed")
    assert trainer.reduce_per_replica is keras_reduce
