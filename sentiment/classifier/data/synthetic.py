"""Synthetic reviews: a small language with the structure that makes word order matter.

Cue words, negation ("not terrible" reads positive) and late turns ("... but in the end it was
superb"), deterministic and balanced: a stand-in for IMDB that needs no download and trains in
seconds, for demos and tests.
"""

from __future__ import annotations

import numpy as np

from sentiment.classifier.data.reviews import SPLITS, Reviews

_POSITIVE_CUES = ("great", "excellent", "wonderful", "brilliant", "superb", "moving", "charming")
_NEGATIVE_CUES = ("awful", "boring", "terrible", "dull", "dreadful", "tedious", "clumsy")
_FILLER = (
    "the",
    "film",
    "movie",
    "plot",
    "actor",
    "actress",
    "scene",
    "story",
    "director",
    "camera",
    "music",
    "script",
    "cast",
    "ending",
    "score",
    "and",
    "with",
    "it",
    "a",
    "of",
    "this",
    "that",
    "was",
    "is",
    "had",
    "some",
    "in",
    "on",
    "for",
    "its",
    "character",
    "dialogue",
    "studio",
    "sequel",
    "budget",
    "setting",
    "minutes",
    "hour",
    "audience",
    "screen",
    "role",
    "years",
)
_SYNTHETIC_SEEDS = {"train": 20_111, "test": 20_112}  # fixed: the data never moves with `seed`


def _synthetic_review(rng: np.random.Generator, label: int) -> str:
    length = int(rng.integers(25, 90))
    words = list(rng.choice(_FILLER, size=length))
    own = _POSITIVE_CUES if label else _NEGATIVE_CUES
    opposite = _NEGATIVE_CUES if label else _POSITIVE_CUES
    kind = int(rng.integers(3))
    if kind == 0:  # plain cues anywhere in the text
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(own)))
    elif kind == 1:  # negation: "not terrible" reads positive
        at = int(rng.integers(len(words) + 1))
        words[at:at] = ["not", str(rng.choice(opposite))]
    else:  # a late turn: an early opposite cue, overruled by the last words
        words.insert(int(rng.integers(len(words) // 3 + 1)), str(rng.choice(opposite)))
        words += ["but", "in", "the", "end", "it", "was", str(rng.choice(own))]
    return " ".join(words).capitalize() + "."


def make_synthetic(reviews_per_split: int) -> dict[str, Reviews]:
    """Deterministic, balanced synthetic reviews with cue words, negation and late turns."""
    reviews = {}
    for split in SPLITS:
        rng = np.random.default_rng(_SYNTHETIC_SEEDS[split])
        labels = [index % 2 for index in range(reviews_per_split)]
        reviews[split] = [(_synthetic_review(rng, label), label) for label in labels]
    return reviews
