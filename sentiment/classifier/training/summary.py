"""The train stage's last line, which the pipeline benchmark reads its throughput from."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the stage's line is made without TensorFlow loaded by this module
    from sentiment.classifier.training.best_epoch import Outcome

SUMMARY_PATTERN = re.compile(r"train: ([\d,]+) reviews in ([\d.]+) s \(([\d,]+) reviews/s\)")


def training_summary(
    reviews_seen: int, seconds: float, val_accuracy: float, stops: Sequence[Outcome] = ()
) -> str:
    """One line: reviews trained on (the epochs run), fit time with validation, throughput, the
    saved model's validation accuracy; with early stopping, where each fit stopped and which
    epoch it kept."""
    line = (
        f"train: {reviews_seen:,} reviews in {seconds:.1f} s ({reviews_seen / seconds:,.0f} "
        f"reviews/s), val_accuracy {val_accuracy:.4f}"
    )
    if len(stops) == 1:
        line += f"; {stops[0].describe()}"
    elif stops:
        members = ", ".join(f"member {n}: {stop.describe()}" for n, stop in enumerate(stops, 1))
        line += f"; {members}"
    return line
