import hashlib
import subprocess
import sys

import keras
import numpy as np

from sentiment.saving import save_model
from tests.conftest import PROJECT_ROOT

SAVE_A_TRAINED_MODEL = """
import sys
import keras, numpy as np
from sentiment.model import build_model
from sentiment.params import ModelConfig, Params
from sentiment.saving import save_model
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
