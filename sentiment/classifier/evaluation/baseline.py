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

from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_matrix, diags
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from sentiment import forked
from sentiment.classifier.data.preprocessing import number_words
from sentiment.classifier.data.reviews import VALIDATION, Reviews
from sentiment.classifier.data.splits import Words
from sentiment.classifier.evaluation.metrics import macro_roc_auc
from sentiment.classifier.model.ngrams import NgramModel, NgramVocabulary

# The choices tried on the validation reviews: n-grams up to bigrams or trigrams, and the
# inverse regularisation strength of the logistic regression.
LONGEST_NGRAMS = (2, 3)
REGULARISATION = (0.1, 1.0, 10.0)
SMOOTHING = 1.0  # added to every n-gram's count in the ratio (Wang & Manning's alpha)


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

    def shipped(
        self, ngrams: NgramVocabulary, columns: np.ndarray, longest: int, words: list[str]
    ) -> NgramModel:
        """The model as it ships, on the given columns (up to `longest`-grams) of the n-grams
        it was fitted on: each n-gram's ratio times its coefficient, per target."""
        kept = NgramVocabulary(longest)
        kept.base, kept.vocabulary = ngrams.base, ngrams.vocabulary[columns]
        weights = np.column_stack(
            [ratio * model.coef_[0] for ratio, model in zip(self.ratios, self.models, strict=True)]
        )
        intercepts = np.array([model.intercept_[0] for model in self.models])
        return NgramModel.from_vocabulary(kept, words, weights, intercepts)

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


class FittedBaseline(NamedTuple):
    """The baseline chosen on validation: its test metrics, the model as it ships, and its
    probabilities for the validation and the test reviews ((n,) for two labels, (n, N) for
    more)."""

    metrics: dict[str, float]
    model: NgramModel
    validation: np.ndarray
    test: np.ndarray


def fit_baseline_on_texts(
    reviews: dict[str, Reviews], *, validation_split: float, seed: int
) -> FittedBaseline:
    """`fit_baseline` on reviews as text: split and numbered as preprocess does."""
    words, spelled = number_words(reviews, validation_split=validation_split, seed=seed)
    return fit_baseline(words, spelled, seed=seed)


def fit_baseline(words: dict[str, Words], spelled: list[str], *, seed: int) -> FittedBaseline:
    """Choose the n-gram range and regularisation on the validation reviews, fitting on the same
    training reviews the network fits on; score the choice on the test split.

    `words` and `spelled` are preprocess's: each split's reviews as word numbers, and the fit
    reviews' words (`number_words`). With more than two labels F1 and ROC AUC are macro averages.
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
    shipped = model.shipped(ngrams, columns, longest, spelled)
    validation_probabilities = shipped.probabilities(validation.reviews())
    probabilities = shipped.probabilities(test.reviews())
    test_labels = test.labels.astype(np.int64)
    predicted = _predicted(probabilities)
    if probabilities.ndim == 1:
        f1 = f1_score(test_labels, predicted)
        roc_auc = roc_auc_score(test_labels, probabilities)
    else:
        f1 = f1_score(
            test_labels, predicted, labels=np.arange(classes), average="macro", zero_division=0
        )
        roc_auc = macro_roc_auc(test_labels, probabilities)
    metrics = {
        "accuracy": round(float(accuracy_score(test_labels, predicted)), 6),
        "f1": round(float(f1), 6),
        "roc_auc": round(float(roc_auc), 6),
        "log_loss": round(float(log_loss(test_labels, probabilities, labels=range(classes))), 6),
        "features": len(columns),
        "longest_ngram": longest,
        "regularisation": regularisation,
        "validation_accuracy": round(validation_accuracy, 6),
    }
    return FittedBaseline(metrics, shipped, validation_probabilities, probabilities)
