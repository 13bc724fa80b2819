"""A model's probabilities for a split, on disk: scored once, where the model is trained, and read
by every stage that needs them (evaluate's metrics, export's parity checks).

No TensorFlow here: evaluate reads the scores without starting it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentiment.errors import PipelineError
from sentiment.files import atomic_output


def save_scores(path: Path, probabilities: np.ndarray) -> None:
    """Write probabilities, (n,) or (n, labels) float32, as a .npy file, all or nothing (the same
    bytes for the same values)."""
    with atomic_output(path) as staging, staging.open("wb") as file:
        np.save(file, np.asarray(probabilities, dtype=np.float32), allow_pickle=False)


def load_scores(
    path: Path, *, reviews: int, labels: int, stage: str = "train", split: str = "test"
) -> np.ndarray:
    """The probabilities save_scores wrote, checked to be one row per review of the split and
    the shape `labels` labels give: (n,) for two, (n, labels) for more. `stage` names the stage
    that writes them (train: the network's; baseline: the baseline's)."""
    fix = f"run `dvc repro {stage}` to make them again"
    what = f"the {stage} stage's {split} scores"
    if not path.is_file():
        raise PipelineError(
            f"{path} is missing: the {stage} stage writes the {split} scores; {fix}"
        )
    try:
        probabilities = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path} is not {what} ({error.__class__.__name__}): {fix}") from None
    if not isinstance(probabilities, np.ndarray):
        probabilities.close()  # an .npz archive
        raise PipelineError(f"{path} is not {what} (an archive): {fix}")
    expected = (reviews,) if labels == 2 else (reviews, labels)
    if probabilities.shape != expected or probabilities.dtype != np.float32:
        raise PipelineError(
            f"{path} holds {probabilities.dtype} scores of shape {probabilities.shape}, where the "
            f"{split} split needs float32 of shape {expected}: {fix}"
        )
    return probabilities
