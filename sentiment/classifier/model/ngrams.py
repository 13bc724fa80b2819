"""The baseline's n-grams, and the baseline as it ships: a linear model of binary n-gram features.

An n-gram is 1 to `longest` of the pipeline's tokens in a row, each review the set of its n-grams
(an n-gram counts once however often the review has it). The baseline
(classifier/evaluation/baseline.py) learns which n-grams to keep and their weights; `NgramModel`
is what it learnt, saved with the fit reviews' words as strings, so raw text can be scored
without the splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from sentiment import forked
from sentiment.classifier.data.splits import load_arrays, save_arrays
from sentiment.classifier.data.text import tokenize
from sentiment.errors import PipelineError
from sentiment.files import atomic_output

MIN_REVIEWS = 2  # an n-gram in fewer training reviews is left out
LOOKUP_ROWS = 2000  # reviews whose n-grams are looked up in the vocabulary at once
WORDS_FILE = "words.txt"  # the fit reviews' words, word n on line n
WEIGHTS_FILE = "model.npz"  # the kept n-grams, their weights and the intercepts
_MODEL_ARRAYS = ("ngrams", "weights", "intercepts")


class NgramVocabulary:
    """The n-grams (1 to `longest` words of the pipeline's tokens) in at least MIN_REVIEWS of the
    fitted reviews, as binary features: each review's set of them, one column per n-gram.

    The same features as scikit-learn's CountVectorizer(ngram_range=(1, longest), binary=True,
    min_df=MIN_REVIEWS) with the pipeline's tokenizer (tested), in another column order, far
    faster: it reads the reviews as preprocess numbered their words, and an n-gram is the number
    its words make as digits in base (words + 2), so counting is NumPy's sorting rather than
    Python's dictionaries of strings.
    """

    def __init__(self, longest: int):
        self.longest = longest

    def _grams(self, ids: np.ndarray) -> np.ndarray:
        """The review's distinct n-grams as numbers, sorted (every digit >= 1: lengths never
        collide)."""
        ids = ids.astype(np.int64, copy=False)  # n-gram numbers outgrow 32 bits
        grams, current = [ids], ids
        for n in range(2, self.longest + 1):
            current = current[:-1] * self.base + ids[n - 1 :]
            grams.append(current)
        grams = np.concatenate(grams)
        grams.sort()  # then each first of equal neighbours: np.unique's result, at a third the cost
        first = np.empty(len(grams), dtype=bool)
        first[:1] = True
        np.not_equal(grams[1:], grams[:-1], out=first[1:])
        return grams[first]

    def fit_transform(self, reviews: list[np.ndarray], distinct: int) -> csr_matrix:
        """Learn the kept n-grams of numbered reviews (preprocess's words: 1 to `distinct`,
        distinct + 1 for any word the fitted reviews lack); their features.

        distinct + 1, the number of a word no fitted review has, is in no kept n-gram. The reviews
        are counted in parts, side by side; each part's counts come sorted, so merging them is a
        merge of sorted runs.
        """
        self.base = distinct + 2
        if self.base**self.longest >= 2**63:
            raise ValueError(f"{distinct:,} words are too many for {self.longest}-grams")
        parts = forked.processes_for(len(reviews))  # one part per process: fewer runs to merge
        size = max(1, -(-len(reviews) // parts))
        shares = [slice(start, start + size) for start in range(0, len(reviews), size)]
        counted = forked.side_by_side(
            _count_part,
            shares,
            {"ngrams": self, "reviews": reviews},
            f"counting the baseline's n-grams of {len(reviews):,} reviews",
        )
        none = np.zeros(0, dtype=np.int64)
        grams = np.concatenate([grams for grams, _ in counted] or [none])
        counts = np.concatenate([counts for _, counts in counted] or [none])
        order = np.argsort(grams, kind="stable")  # timsort: a merge of the parts' sorted runs
        grams, counts = grams[order], counts[order]
        starts = np.flatnonzero(np.diff(grams, prepend=-1))  # each gram's first place
        in_reviews = np.add.reduceat(counts, starts) if len(grams) else none
        self.vocabulary = grams[starts][in_reviews >= MIN_REVIEWS]  # sorted
        return self.transform(reviews)

    def transform(self, reviews: list[np.ndarray]) -> csr_matrix:
        """The binary matrix of the reviews' kept n-grams (numbered as the fitted ones), looked
        up a block of LOOKUP_ROWS reviews at a time (one search per block: fast, and memory
        bounded by the block), blocks side by side."""
        shape = (len(reviews), len(self.vocabulary))
        if not len(self.vocabulary):
            return csr_matrix(shape)
        found = forked.side_by_side(
            _look_up_block,
            _blocks(len(reviews)),
            {"ngrams": self, "reviews": reviews},
            f"looking up the baseline's n-grams of {len(reviews):,} reviews",
        )
        indices = np.concatenate([columns for columns, _ in found] or [np.zeros(0, np.int64)])
        per_review = np.concatenate([counts for _, counts in found] or [np.zeros(0, np.int64)])
        indptr = np.concatenate([[0], np.cumsum(per_review)])
        return csr_matrix((np.ones(len(indices)), indices, indptr), shape=shape)

    def lengths(self) -> np.ndarray:
        """Each column's n-gram length in words."""
        lengths = np.ones(len(self.vocabulary), dtype=int)
        bound = self.base
        for n in range(2, self.longest + 1):
            lengths[self.vocabulary >= bound] = n
            bound *= self.base
        return lengths


def _blocks(reviews: int) -> list[slice]:
    return [slice(start, start + LOOKUP_ROWS) for start in range(0, reviews, LOOKUP_ROWS)]


def _count_part(part: slice) -> tuple[np.ndarray, np.ndarray]:
    """The n-grams of a part of the reviews, sorted, and how many of its reviews have each."""
    ngrams, reviews = forked.SHARED["ngrams"], forked.SHARED["reviews"][part]
    return np.unique(
        np.concatenate([ngrams._grams(review) for review in reviews]), return_counts=True
    )


def _look_up_block(block: slice) -> tuple[np.ndarray, np.ndarray]:
    """The kept n-grams' columns of each review of a block, ascending, and their counts."""
    ngrams, reviews = forked.SHARED["ngrams"], forked.SHARED["reviews"][block]
    rows = [ngrams._grams(review) for review in reviews]
    grams, vocabulary = np.concatenate(rows), ngrams.vocabulary
    positions = np.minimum(np.searchsorted(vocabulary, grams), len(vocabulary) - 1)
    kept = vocabulary[positions] == grams
    row_of = np.repeat(np.arange(len(rows)), [len(row) for row in rows])
    return positions[kept], np.bincount(row_of[kept], minlength=len(rows))


@dataclass(frozen=True, eq=False)
class NgramModel:
    """A linear model of binary n-gram features: per target label, the sum of the weights of the
    kept n-grams a review has, plus an intercept, through the logistic function.

    With two labels one target, the positive label (probabilities (n,)); with more, one target
    per label, one-vs-rest, the probabilities normalised to sum to 1 ((n, labels)). The
    baseline's weight of an n-gram is its naive-Bayes log-count ratio times the logistic
    regression's coefficient: one number, so scoring needs neither.
    """

    words: tuple[str, ...]  # the fit reviews' words: word n (from 1) is words[n - 1]
    ngrams: np.ndarray  # int32 (features, longest): each kept n-gram's word numbers, 0 after it
    weights: np.ndarray  # float64 (features, targets)
    intercepts: np.ndarray  # float64 (targets,)

    @property
    def labels(self) -> int:
        targets = self.intercepts.shape[0]
        return 2 if targets == 1 else targets

    @cached_property
    def _vocabulary(self) -> NgramVocabulary:
        """The kept n-grams as NgramVocabulary numbers them (ascending: the weights' row order)."""
        longest = self.ngrams.shape[1]
        vocabulary = NgramVocabulary(longest)
        vocabulary.base = len(self.words) + 2
        numbers = np.zeros(len(self.ngrams), dtype=np.int64)
        for column in range(longest):
            word = self.ngrams[:, column].astype(np.int64)
            numbers = np.where(word > 0, numbers * vocabulary.base + word, numbers)
        if np.any(np.diff(numbers) <= 0):
            raise PipelineError(
                "the baseline's n-grams are out of order: run `dvc repro baseline` to make it again"
            )
        vocabulary.vocabulary = numbers
        return vocabulary

    def probabilities(self, reviews: list[np.ndarray]) -> np.ndarray:
        """Probabilities of reviews given as the fit reviews number their words (any word they
        lack: len(words) + 1)."""
        features = self._vocabulary.transform(reviews)
        scores = 1.0 / (1.0 + np.exp(-(features @ self.weights + self.intercepts)))
        if self.labels == 2:
            return scores[:, 0]
        return scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)

    def number(self, texts: list[str]) -> list[np.ndarray]:
        """Texts tokenised as preprocess tokenises them, as the fit reviews number their words."""
        numbers = {word: index for index, word in enumerate(self.words, start=1)}
        unknown = len(self.words) + 1
        return [
            np.array([numbers.get(word, unknown) for word in tokenize(text)], dtype=np.int64)
            for text in texts
        ]

    def probabilities_of_texts(self, texts: list[str]) -> np.ndarray:
        """Probabilities of raw texts: every word read, however long the text."""
        return self.probabilities(self.number(texts))

    def save(self, folder: Path) -> None:
        """Write the words (one a line) and the arrays (an .npz numpy reads with
        allow_pickle=False) into a folder, the same bytes for the same model."""
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(folder / WORDS_FILE) as path:
            path.write_text("".join(f"{word}\n" for word in self.words), encoding="utf-8")
        with atomic_output(folder / WEIGHTS_FILE) as path:
            save_arrays(self, _MODEL_ARRAYS, path)

    @classmethod
    def load(cls, folder: Path) -> NgramModel:
        """Read a model `save` wrote, checked to hold together."""
        fix = "run `dvc repro baseline` to make it again"
        words_path = folder / WORDS_FILE
        if not words_path.is_file():
            raise PipelineError(f"{words_path} is missing: the baseline stage writes it; {fix}")
        words = tuple(words_path.read_text(encoding="utf-8").splitlines())
        ngrams, weights, intercepts = load_arrays(
            folder / WEIGHTS_FILE, _MODEL_ARRAYS, "the baseline's n-gram weights", fix
        )
        if (
            ngrams.ndim != 2
            or weights.shape != (len(ngrams), len(intercepts))
            or intercepts.ndim != 1
            or (len(ngrams) and (ngrams.min() < 0 or ngrams.max() > len(words)))
        ):
            raise PipelineError(
                f"{folder} does not hold together: {len(ngrams)} n-grams, weights "
                f"{weights.shape}, {len(intercepts)} intercepts, {len(words)} words; {fix}"
            )
        model = cls(words, ngrams, weights, intercepts)
        model._vocabulary  # noqa: B018 (checks the n-grams' order now, not at the first score)
        return model

    @classmethod
    def from_vocabulary(
        cls,
        vocabulary: NgramVocabulary,
        words: list[str],
        weights: np.ndarray,
        intercepts: np.ndarray,
    ) -> NgramModel:
        """The model of a fitted vocabulary's n-grams (each row of weights one of its n-grams,
        in its order) over the fit reviews' words."""
        if vocabulary.base != len(words) + 2:
            raise ValueError(f"{len(words)} words, but the n-grams count {vocabulary.base - 2}")
        ngrams = np.zeros((len(vocabulary.vocabulary), vocabulary.longest), dtype=np.int32)
        lengths = vocabulary.lengths()
        remaining = vocabulary.vocabulary.copy()
        for position in range(vocabulary.longest - 1, -1, -1):
            # the last word of each n-gram still long enough, then the one before it, ...
            has = lengths > position
            ngrams[has, position] = remaining[has] % vocabulary.base
            remaining[has] //= vocabulary.base
        return cls(
            tuple(words),
            ngrams,
            np.asarray(weights, dtype=np.float64),
            np.asarray(intercepts, dtype=np.float64),
        )
