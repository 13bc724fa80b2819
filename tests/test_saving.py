import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np

from sentiment.classifier.model.saving import save_model
from tests.conftest import PROJECT_ROOT

SAVE_A_TRAINED_MODEL = """
import sys
import keras, numpy as np
from sentiment.classifier.model.network import build_model
from sentiment.params import ModelConfig, Params
from sentiment.classifier.model.saving import save_model
keras.utils.set_random_seed(0)
params = Params().replace(embedding_dim=4, units=3)
model = build_model(ModelConfig.from_params(params, vocab_size=30))
model.compile("adam", "binary_crossentropy")
model.fit(np.arange(60).reshape(6, 10) % 29 + 1, np.arange(6) % 2, verbose=0)
save_model(model, sys.argv[1])
"""


def test_the_same_model_saved_by_two_processes_is_the_same_bytes(tmp_path):
    digests = []
    for name in ("first.keras", "second.keras"):
        subprocess.run(
            [sys.executable, "-c", SAVE_A_TRAINED_MODEL, tmp_path / name],
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_a_normalised_file_loads_as_the_same_model(trained_model, tmp_path):
    save_model(trained_model, tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    token_ids = np.arange(40).reshape(4, 10) % 50 + 1
    np.testing.assert_array_equal(
        loaded.predict(token_ids, verbose=0), trained_model.predict(token_ids, verbose=0)
    )


# .keras files whose configs name each of the project's layers by a module path the package no
# longer has (sentiment.fast_layers, sentiment.model, sentiment.export): Keras finds the classes
# by their registered names ("sentiment>FusedLSTM"), so such files keep loading and predicting.
FORMER_PATHS = Path(__file__).parent / "data" / "former_module_paths"


def _recorded_modules(path: Path) -> set[str]:
    modules = set()

    def walk(config):
        if isinstance(config, dict):
            if str(config.get("registered_name", "")).startswith("sentiment>"):
                modules.add(config["module"])
            for value in config.values():
                walk(value)
        elif isinstance(config, list):
            for value in config:
                walk(value)

    walk(json.loads(zipfile.ZipFile(path).read("config.json")))
    return modules


def test_a_trained_model_saved_under_former_module_paths_loads_and_predicts_the_same():
    from sentiment.classifier.model.saving import load_trained_model

    path = FORMER_PATHS / "trained.keras"
    assert _recorded_modules(path) == {"sentiment.fast_layers", "sentiment.model"}
    expected = json.loads((FORMER_PATHS / "expected.json").read_text())
    model = load_trained_model(path)
    probabilities = model.predict_on_batch(np.array(expected["token_ids"], dtype=np.int32))
    np.testing.assert_allclose(probabilities[:, 0], expected["trained"], rtol=0, atol=1e-6)


def test_an_export_saved_under_former_module_paths_loads_and_serves_raw_text():
    from sentiment.classifier.serving.export import load_exported

    path = FORMER_PATHS / "exported.keras"
    assert _recorded_modules(path) == {"sentiment.export", "sentiment.model"}
    expected = json.loads((FORMER_PATHS / "expected.json").read_text())
    model = load_exported(path)
    probabilities = model.predict_on_batch(np.array(expected["texts"], dtype=object))
    np.testing.assert_allclose(probabilities[:, 0], expected["exported"], rtol=0, atol=1e-6)
