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
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from sentiment.classifier.data.reviews import VALIDATION, Reviews
from sentiment.classifier.data.splits import carve_split
from sentiment.classifier.data.text import tokenize
from sentiment.classifier.evaluation.metrics import macro_roc_auc

# The choices tried on the validation reviews: n-grams up to bigrams or trigrams, and the
# inverse regularisation strength of the logistic regression.
LONGEST_NGRAMS = (2, 3)
REGULARISATION = (0.1, 1.0, 10.0)
SMOOTHING = 1.0  # added to every n-gram's count in the ratio (Wang & Manning's alpha)
MIN_REVIEWS = 2  # an n-gram in fewer training reviews is left out


class NaiveBayesLogistic:
    """One-vs-rest logistic regressions on naive-Bayes-weighted binary n-gram features."""

    def __init__(self, classes: int, regularisation: float, seed: int):
        self.classes, self.regularisation, self.seed = classes, regularisation, seed

    def _targets(self) -> list[int]:
        return [1] if self.classes == 2 else list(range(self.classes))

    def fit(self, features: csr_matrix, labels: np.ndarray) -> NaiveBayesLogistic:
        self.ratios, self.models = [], []
        for target in self._targets():
            positive = labels == target
            p = SMOOTHING + np.asarray(features[positive].sum(axis=0)).ravel()
            q = SMOOTHING + np.asarray(features[~positive].sum(axis=0)).ravel()
            ratio = np.log((p / p.sum()) / (q / q.sum()))
            model = LogisticRegression(
                C=self.regularisation, max_iter=1000, solver="liblinear", random_state=self.seed
            )
            model.fit(features @ diags(ratio), positive.astype(int))
            self.ratios.append(ratio)
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


def _predicted(probabilities: np.ndarray) -> np.ndarray:
    if probabilities.ndim == 1:
        return (probabilities >= 0.5).astype(int)
    return probabilities.argmax(axis=1)


def fit_and_score_baseline(
    reviews: dict[str, Reviews], *, validation_split: float, seed: int
) -> dict[str, float]:
    """Choose the n-gram range and regularisation on the validation reviews, fitting on the same
    training reviews the network fits on; score the choice on the test split.

    With more than two labels F1 and ROC AUC are macro averages.
    """
    labels = np.array([label for _, label in reviews["train"]])
    texts = [text for text, _ in reviews["train"]]
    if VALIDATION in reviews:  # the data gave its validation split: the network fits on all train
        fit_texts, fit_labels = texts, labels
        validation = reviews[VALIDATION]
    else:
        fit, held_out = carve_split(labels, share=validation_split, seed=seed)
        fit_texts, fit_labels = [texts[i] for i in fit], labels[fit]
        validation = [reviews["train"][i] for i in held_out]
    validation_labels = np.array([label for _, label in validation])
    classes = int(labels.max()) + 1
    # One vocabulary up to the longest n-grams; a shorter range is its subset of columns (the same
    # n-grams in the same number of reviews), so the reviews are counted once.
    vectorizer = CountVectorizer(
        tokenizer=tokenize,
        lowercase=False,  # tokenize already lower-cases, as the network's inputs are
        token_pattern=None,
        ngram_range=(1, max(LONGEST_NGRAMS)),
        binary=True,
        min_df=MIN_REVIEWS,
        dtype=np.float64,
    )
    all_features = vectorizer.fit_transform(fit_texts)
    all_held_out = vectorizer.transform([text for text, _ in validation])
    lengths = np.array([name.count(" ") + 1 for name in vectorizer.get_feature_names_out()])
    best = None
    for longest in LONGEST_NGRAMS:
        columns = np.flatnonzero(lengths <= longest)
        features, held_out_features = all_features[:, columns], all_held_out[:, columns]
        for regularisation in REGULARISATION:
            model = NaiveBayesLogistic(classes, regularisation, seed).fit(features, fit_labels)
            accuracy = float(
                np.mean(_predicted(model.probabilities(held_out_features)) == validation_labels)
            )
            if best is None or accuracy > best[0]:  # ties: the smaller model, tried first
                best = (accuracy, longest, regularisation, columns, model)
    validation_accuracy, longest, regularisation, columns, model = best
    test_labels = np.array([label for _, label in reviews["test"]])
    test_features = vectorizer.transform([text for text, _ in reviews["test"]])[:, columns]
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
