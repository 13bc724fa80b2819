"""Where a dataset's reviews come from: the `dataset` param's sources."""

from __future__ import annotations

from sentiment.classifier.data.imdb import check_imdb, fetch_imdb
from sentiment.classifier.data.reviews import SPLITS, Reviews, fingerprint
from sentiment.classifier.data.synthetic import make_synthetic


def get_reviews(
    *, dataset: str, synthetic_reviews: int, mirror: str | None = None
) -> tuple[dict[str, Reviews], dict[str, str], str]:
    """The dataset's reviews, their per-split fingerprints, and where they came from."""
    if dataset == "synthetic":
        reviews = make_synthetic(synthetic_reviews)
        return reviews, {split: fingerprint(reviews[split]) for split in SPLITS}, "synthetic"
    reviews, source = fetch_imdb(mirror=mirror)
    return reviews, check_imdb(reviews), source
