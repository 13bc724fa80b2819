"""The blend of the network and the baseline: their probabilities combined with one weight, the
weight chosen on the validation split alone.

The weight is the network's share, on a grid from 0 (the baseline alone) to 1 (the network
alone), so the choice ships either member unblended where that is best on validation, and is
never below the better of the two there. Two ways to combine, both measured:

- `log_odds`: the weighted sum of the two models' log-odds (with more labels, of their log
  probabilities, normalised: a weighted geometric mean), through the logistic function (softmax);
- `probability`: the weighted mean of the probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMBINATIONS = ("log_odds", "probability")
# The combination the pipeline ships: on IMDB, customer reviews and SST-5 log-odds blended at
# least as well as averaged probabilities on validation (metrics/records/blend-combinations.json).
SHIPPED_COMBINATION = "log_odds"
WEIGHT_STEP = 0.05
# the network's weights tried: 0, 0.05, ..., 1
WEIGHTS = tuple(round(step * WEIGHT_STEP, 2) for step in range(round(1 / WEIGHT_STEP) + 1))
EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] before their logarithms


def blend(network: np.ndarray, baseline: np.ndarray, weight: float, combination: str) -> np.ndarray:
    """The blend's probabilities: (n,) positive-label probabilities for two labels, (n, N) for
    more, as both members give them. Weight 1 is the network's own probabilities, weight 0 the
    baseline's, exactly."""
    if combination not in COMBINATIONS:
        raise ValueError(f"combination {combination!r} is not one of {', '.join(COMBINATIONS)}")
    if network.shape != baseline.shape:
        raise ValueError(f"the network's scores {network.shape} and the baseline's differ")
    network, baseline = network.astype(np.float64), baseline.astype(np.float64)
    if weight == 1:
        return network
    if weight == 0:
        return baseline
    if combination == "probability":
        return weight * network + (1 - weight) * baseline
    if network.ndim == 1:
        odds = weight * _log_odds(network) + (1 - weight) * _log_odds(baseline)
        return 1 / (1 + np.exp(-odds))
    logs = weight * np.log(np.clip(network, EPSILON, 1)) + (1 - weight) * np.log(
        np.clip(baseline, EPSILON, 1)
    )
    logs -= logs.max(axis=1, keepdims=True)
    exponentials = np.exp(logs)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def _log_odds(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(probabilities, EPSILON, 1 - EPSILON)
    return np.log(clipped) - np.log1p(-clipped)


def predicted(probabilities: np.ndarray) -> np.ndarray:
    """Each review's predicted label: the positive one at or above 0.5, or the likeliest."""
    if probabilities.ndim == 1:
        return (probabilities >= 0.5).astype(int)
    return probabilities.argmax(axis=1)


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The mean negative log-likelihood of the labels (probabilities clipped at EPSILON)."""
    if probabilities.ndim == 1:
        chosen = np.where(labels == 1, probabilities, 1 - probabilities)
    else:
        chosen = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(chosen, EPSILON, 1))))


@dataclass(frozen=True)
class BlendChoice:
    """The weight chosen on validation, how the members combine, and what each weight scored."""

    weight: float  # the network's share: 0 the baseline alone, 1 the network alone
    combination: str
    validation_accuracy: float
    validation_log_loss: float
    by_weight: dict[float, tuple[float, float]]  # weight: (validation accuracy, log loss)


def choose_blend(
    network: np.ndarray, baseline: np.ndarray, labels: np.ndarray, combination: str
) -> BlendChoice:
    """The weight of WEIGHTS with the best validation accuracy; a tie goes to the lower
    validation log loss, then to the weight nearer the middle of the tie (the earlier of two).

    Reads the validation split's probabilities and labels only: the test split has no say.
    """
    labels = np.asarray(labels).astype(np.int64)
    by_weight = {}
    for weight in WEIGHTS:
        probabilities = blend(network, baseline, weight, combination)
        accuracy = float(np.mean(predicted(probabilities) == labels))
        by_weight[weight] = (accuracy, log_loss(probabilities, labels))
    best = max(by_weight.values(), key=lambda scores: (scores[0], -scores[1]))
    tied = [weight for weight, scores in by_weight.items() if scores == best]
    weight = tied[(len(tied) - 1) // 2]
    return BlendChoice(weight, combination, best[0], best[1], by_weight)


def weight_meaning(weight: float) -> str:
    """What a blend weight means, in the words the report and the model card use."""
    if weight == 1:
        return "weight 1: the network alone (no blend did better on validation)"
    if weight == 0:
        return "weight 0: the baseline alone (no blend did better on validation)"
    return (
        f"the blend's log-odds are {weight:g} x the network's plus {round(1 - weight, 2):g} x "
        "the baseline's"
    )
