"""Synthetic reviews: a small language with the structure that makes word order matter.

Cue words, negation ("not terrible" reads positive) and late turns ("... but in the end it was
superb"), deterministic and balanced: a stand-in for IMDB that needs no download and trains in
seconds, for demos and tests. With more than two labels the reviews are graded: each grade has
its own cue words, from the most negative to the most positive, with the same filler around them.
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


# Cue words by grade, most negative first: with N labels, grade k of N takes its share of them.
_GRADED_CUES = (
    ("dreadful", "abysmal", "unwatchable"),
    ("awful", "terrible", "painful"),
    ("dull", "tedious", "boring"),
    ("bland", "forgettable", "flat"),
    ("uneven", "patchy", "middling"),
    ("decent", "watchable", "pleasant"),
    ("good", "solid", "enjoyable"),
    ("great", "excellent", "gripping"),
    ("wonderful", "moving", "charming"),
    ("superb", "brilliant", "masterful"),
)


def grade_names(labels: int) -> list[str]:
    """The names of `labels` grades, most negative first: grade_1 ... grade_N."""
    return [f"grade_{index}" for index in range(1, labels + 1)]


def _graded_review(rng: np.random.Generator, label: int, labels: int) -> str:
    length = int(rng.integers(20, 60))
    words = list(rng.choice(_FILLER, size=length))
    groups = np.array_split(np.arange(len(_GRADED_CUES)), labels)[label]
    cues = [word for group in groups for word in _GRADED_CUES[group]]
    for _ in range(int(rng.integers(1, 3))):
        words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(cues)))
    return " ".join(words).capitalize() + "."


def make_synthetic_graded(reviews_per_split: int, labels: int) -> dict[str, Reviews]:
    """Deterministic, balanced synthetic reviews of `labels` grades (label i is grade i + 1)."""
    reviews = {}
    for split in SPLITS:
        rng = np.random.default_rng([_SYNTHETIC_SEEDS[split], labels])
        grades = [index % labels for index in range(reviews_per_split)]
        reviews[split] = [(_graded_review(rng, grade, labels), grade) for grade in grades]
    return reviews


def make_synthetic(reviews_per_split: int) -> dict[str, Reviews]:
    """Deterministic, balanced synthetic reviews with cue words, negation and late turns."""
    reviews = {}
    for split in SPLITS:
        rng = np.random.default_rng(_SYNTHETIC_SEEDS[split])
        labels = [index % 2 for index in range(reviews_per_split)]
        reviews[split] = [(_synthetic_review(rng, label), label) for label in labels]
    return reviews
