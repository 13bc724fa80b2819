"""The train stage's last line, which the pipeline benchmark reads its throughput from."""

from __future__ import annotations

import re

SUMMARY_PATTERN = re.compile(r"train: ([\d,]+) reviews in ([\d.]+) s \(([\d,]+) reviews/s\)")


def training_summary(reviews_seen: int, seconds: float, val_accuracy: float) -> str:
    """One line: reviews trained on (epochs included), fit time with validation, throughput."""
    return (
        f"train: {reviews_seen:,} reviews in {seconds:.1f} s ({reviews_seen / seconds:,.0f} "
        f"reviews/s), val_accuracy {val_accuracy:.4f}"
    )
