"""The linear baseline every report shows beside the network: NBSVM-style naive-Bayes features
with logistic regression (Wang & Manning 2012; Mesnil et al. 2015).

Each review is the set of its n-grams (binary counts of the pipeline's own tokens); each n-gram is
weighted by its naive-Bayes log-count ratio, log((p / |p|1) / (q / |q|1)) with p and q its
smoothed counts in the label's training reviews and in the others'; a logistic regression reads
the weighted features. With more than two labels, one such classifier per label (its own ratios,
one-vs-rest), their probabilities normalised. The n-gram range and the regularisation are chosen
on the validation reviews the network is validated on, never on the test split.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix, diags
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from sentiment import forked
from sentiment.classifier.data.preprocessing import number_words
from sentiment.classifier.data.reviews import VALIDATION, Reviews
from sentiment.classifier.data.splits import Words
from sentiment.classifier.evaluation.metrics import macro_roc_auc

# The choices tried on the validation reviews: n-grams up to bigrams or trigrams, and the
# inverse regularisation strength of the logistic regression.
LONGEST_NGRAMS = (2, 3)
REGULARISATION = (0.1, 1.0, 10.0)
SMOOTHING = 1.0  # added to every n-gram's count in the ratio (Wang & Manning's alpha)
MIN_REVIEWS = 2  # an n-gram in fewer training reviews is left out
LOOKUP_ROWS = 2000  # reviews whose n-grams are looked up in the vocabulary at once


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


def targets_of(classes: int) -> list[int]:
    """The labels a classifier is fitted for: the positive one of two, else each (one-vs-rest)."""
    return [1] if classes == 2 else list(range(classes))


def naive_bayes_ratios(
    features: csr_matrix, labels: np.ndarray, targets: list[int]
) -> list[np.ndarray]:
    """Each target's log-count ratio per n-gram, log((p / |p|1) / (q / |q|1)), smoothed."""
    ratios = []
    for target in targets:
        positive = labels == target
        p = SMOOTHING + np.asarray(features[positive].sum(axis=0)).ravel()
        q = SMOOTHING + np.asarray(features[~positive].sum(axis=0)).ravel()
        ratios.append(np.log((p / p.sum()) / (q / q.sum())))
    return ratios


class NaiveBayesLogistic:
    """One-vs-rest logistic regressions on naive-Bayes-weighted binary n-gram features."""

    def __init__(self, classes: int, regularisation: float, seed: int):
        self.classes, self.regularisation, self.seed = classes, regularisation, seed

    def fit_weighted(
        self, ratios: list[np.ndarray], weighted: list[csr_matrix], labels: np.ndarray
    ) -> NaiveBayesLogistic:
        """Fit on features already weighted by each target's ratios (shared across C)."""
        self.ratios, self.models = ratios, []
        for target, features in zip(targets_of(self.classes), weighted, strict=True):
            # The dual problem: far fewer reviews than n-grams, where liblinear's dual solver
            # reaches the same optimum about four times as fast as the primal one.
            model = LogisticRegression(
                C=self.regularisation,
                max_iter=1000,
                solver="liblinear",
                dual=True,
                random_state=self.seed,
            )
            model.fit(features, (labels == target).astype(int))
            self.models.append(model)
        return self

    def probabilities(self, features: csr_matrix) -> np.ndarray:
        """The positive label's probabilities (n,) for two labels, each label's (n, N) for more."""
        scores = np.column_stack(
            [
                model.predict_proba(features @ diags(ratio))[:, 1]
                for ratio, model in zip(self.ratios, self.models, strict=True)
            ]
        )
        if self.classes == 2:
            return scores[:, 0]
        return scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)


def _fit_one(task: tuple[int, float, int, np.ndarray, int]) -> NaiveBayesLogistic:
    longest, regularisation, classes, labels, seed = task
    ratios, weighted = forked.SHARED["inputs"][longest]
    return NaiveBayesLogistic(classes, regularisation, seed).fit_weighted(ratios, weighted, labels)


def fit_candidates(
    inputs: dict[int, tuple[list[np.ndarray], list[csr_matrix]]],
    labels: np.ndarray,
    *,
    classes: int,
    seed: int,
) -> dict[tuple[int, float], NaiveBayesLogistic]:
    """Every (longest n-gram, regularisation) candidate's model, from each n-gram range's ratios
    and weighted features.

    The fits run in separate processes, side by side: liblinear seeds one process-wide random
    state at the start of each fit, so a fit alone in its process draws exactly what it draws in
    a serial run (the same bits), where threads would take each other's draws.
    """
    # The costliest fits (least regularised, longest n-grams) first, so the processes finish
    # together.
    keys = sorted(
        ((longest, regularisation) for longest in inputs for regularisation in REGULARISATION),
        key=lambda key: (-key[1], -key[0]),
    )
    tasks = [(longest, c, classes, labels, seed) for longest, c in keys]
    work = f"fitting the baseline's {len(tasks)} candidates on {len(labels):,} reviews"
    models = forked.side_by_side(_fit_one, tasks, {"inputs": inputs}, work)
    return dict(zip(keys, models, strict=True))


def _predicted(probabilities: np.ndarray) -> np.ndarray:
    if probabilities.ndim == 1:
        return (probabilities >= 0.5).astype(int)
    return probabilities.argmax(axis=1)


def fit_and_score_baseline(
    reviews: dict[str, Reviews], *, validation_split: float, seed: int
) -> dict[str, float]:
    """`score_baseline` on reviews as text: split and numbered as preprocess does."""
    words, _ = number_words(reviews, validation_split=validation_split, seed=seed)
    return score_baseline(words, seed=seed)


def score_baseline(words: dict[str, Words], *, seed: int) -> dict[str, float]:
    """Choose the n-gram range and regularisation on the validation reviews, fitting on the same
    training reviews the network fits on; score the choice on the test split.

    `words` is preprocess's: each split's reviews as word numbers (`number_words`). With more
    than two labels F1 and ROC AUC are macro averages.
    """
    fit, validation, test = words["train"], words[VALIDATION], words["test"]
    fit_labels, validation_labels = fit.labels.astype(np.int64), validation.labels.astype(np.int64)
    classes = int(fit_labels.max()) + 1
    # One vocabulary up to the longest n-grams; a shorter range is its subset of columns (the same
    # n-grams in the same number of reviews), so the reviews are counted once.
    ngrams = NgramVocabulary(max(LONGEST_NGRAMS))
    all_features = ngrams.fit_transform(fit.reviews(), int(fit.distinct))
    all_held_out = ngrams.transform(validation.reviews())
    lengths = ngrams.lengths()
    columns = {longest: np.flatnonzero(lengths <= longest) for longest in LONGEST_NGRAMS}
    inputs = {}
    for longest in LONGEST_NGRAMS:
        # The ratios and weighted features depend on the n-grams only: computed once for every C.
        features = all_features[:, columns[longest]]
        ratios = naive_bayes_ratios(features, fit_labels, targets_of(classes))
        inputs[longest] = (ratios, [features @ diags(ratio) for ratio in ratios])
    del features
    models = fit_candidates(inputs, fit_labels, classes=classes, seed=seed)
    del inputs
    best = None
    for longest in LONGEST_NGRAMS:
        held_out_features = all_held_out[:, columns[longest]]
        for regularisation in REGULARISATION:
            model = models[longest, regularisation]
            accuracy = float(
                np.mean(_predicted(model.probabilities(held_out_features)) == validation_labels)
            )
            if best is None or accuracy > best[0]:  # ties: the smaller model, tried first
                best = (accuracy, longest, regularisation, columns[longest], model)
    validation_accuracy, longest, regularisation, columns, model = best
    test_labels = test.labels.astype(np.int64)
    test_features = ngrams.transform(test.reviews())[:, columns]
    probabilities = model.probabilities(test_features)
    predicted = _predicted(probabilities)
    if probabilities.ndim == 1:
        f1 = f1_score(test_labels, predicted)
        roc_auc = roc_auc_score(test_labels, probabilities)
    else:
        f1 = f1_score(
            test_labels, predicted, labels=np.arange(classes), average="macro", zero_division=0
        )
        roc_auc = macro_roc_auc(test_labels, probabilities)
    return {
        "accuracy": round(float(accuracy_score(test_labels, predicted)), 6),
        "f1": round(float(f1), 6),
        "roc_auc": round(float(roc_auc), 6),
        "features": len(columns),
        "longest_ngram": longest,
        "regularisation": regularisation,
        "validation_accuracy": round(validation_accuracy, 6),
    }
