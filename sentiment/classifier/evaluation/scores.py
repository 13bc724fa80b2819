"""The trained model's probabilities for the test split, on disk: scored once, where the model is
trained, and read by every stage that needs them (evaluate's metrics, export's parity checks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentiment.errors import PipelineError


def save_scores(path: Path, probabilities: np.ndarray) -> None:
    """Write probabilities, (n,) or (n, labels) float32, as a .npy file (the same bytes for the
    same values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        np.save(file, np.asarray(probabilities, dtype=np.float32), allow_pickle=False)


def load_scores(path: Path, *, reviews: int, labels: int) -> np.ndarray:
    """The probabilities save_scores wrote, checked to be one row per test review and the
    shape `labels` labels give: (n,) for two, (n, labels) for more."""
    try:
        probabilities = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PipelineError(
            f"{path} is not the train stage's test scores ({error.__class__.__name__}): "
            "run `dvc repro train` to make them again"
        ) from None
    expected = (reviews,) if labels == 2 else (reviews, labels)
    if probabilities.shape != expected or probabilities.dtype != np.float32:
        raise PipelineError(
            f"{path} holds {probabilities.dtype} scores of shape {probabilities.shape}, where the "
            f"test split needs float32 of shape {expected}: run `dvc repro train` to make them "
            "again"
        )
    return probabilities
