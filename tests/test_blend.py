"""The blend of the network and the baseline: the weight chosen on validation alone, 0 and 1
shipping either member unblended, any number of labels."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment.classifier.evaluation.blend import (
    COMBINATIONS,
    WEIGHTS,
    blend,
    choose_blend,
    predicted,
)


def planted(reviews: int = 400, seed: int = 0):
    """Two-label validation scores: a network right on the first half and unsure on the second,
    a baseline the other way round; each alone is right on about 3/4 of the reviews."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, reviews)
    sure = np.where(labels == 1, 0.95, 0.05)
    unsure = np.where(labels == 1, 0.45, 0.55)  # wrong, but barely
    half = np.arange(reviews) < reviews // 2
    network = np.where(half, sure, unsure)
    baseline = np.where(half, unsure, sure)
    return network.astype(np.float32), baseline.astype(np.float32), labels


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_the_weights_run_from_the_baseline_alone_to_the_network_alone(combination):
    network, baseline, _ = planted()
    assert WEIGHTS[0] == 0 and WEIGHTS[-1] == 1 and len(WEIGHTS) == 21
    assert np.array_equal(blend(network, baseline, 1.0, combination), network)
    assert np.array_equal(blend(network, baseline, 0.0, combination), baseline)
    middle = blend(network, baseline, 0.5, combination)
    assert np.all((middle > 0) & (middle < 1))


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_a_blend_beats_either_member_where_each_is_right_on_other_reviews(combination):
    network, baseline, labels = planted()
    choice = choose_blend(network, baseline, labels, combination)
    assert choice.validation_accuracy == 1.0
    assert 0 < choice.weight < 1
    assert choice.by_weight[0.0][0] < 1.0 and choice.by_weight[1.0][0] < 1.0


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_the_better_member_alone_is_chosen_where_blending_does_not_help(combination):
    _, baseline, labels = planted()
    perfect = np.where(labels == 1, 0.99, 0.01).astype(np.float32)
    assert choose_blend(perfect, baseline, labels, combination).weight == 1.0
    assert choose_blend(baseline, perfect, labels, combination).weight == 0.0
    # never below the better member on validation, by construction
    network, baseline, labels = planted(seed=3)
    choice = choose_blend(network, baseline, labels, combination)
    members = [np.mean(predicted(scores) == labels) for scores in (network, baseline)]
    assert choice.validation_accuracy >= max(members)


def test_the_choice_is_deterministic_and_ties_go_to_the_lower_log_loss():
    network, baseline, labels = planted()
    first = choose_blend(network, baseline, labels, "log_odds")
    assert choose_blend(network, baseline, labels, "log_odds") == first
    accuracy, loss = first.by_weight[first.weight]
    for other_accuracy, other_loss in first.by_weight.values():
        assert other_accuracy < accuracy or (other_accuracy == accuracy and other_loss >= loss)


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_three_labels_blend_into_probabilities_that_sum_to_one(combination):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)

    def scores(right: np.ndarray) -> np.ndarray:
        probabilities = np.full((len(labels), 3), 0.1)
        probabilities[np.arange(len(labels)), np.where(right, labels, (labels + 1) % 3)] = 0.8
        return probabilities.astype(np.float32)

    half = np.arange(len(labels)) < 150
    network, baseline = scores(half | (labels == 0)), scores(~half | (labels == 0))
    middle = blend(network, baseline, 0.5, combination)
    assert middle.shape == (300, 3)
    np.testing.assert_allclose(middle.sum(axis=1), 1.0, atol=1e-12)
    choice = choose_blend(network, baseline, labels, combination)
    members = [np.mean(predicted(scores) == labels) for scores in (network, baseline)]
    assert choice.validation_accuracy >= max(members)


def test_members_of_different_shapes_or_an_unknown_combination_are_refused():
    network, baseline, _ = planted()
    with pytest.raises(ValueError, match="differ"):
        blend(network, baseline[:10], 0.5, "log_odds")
    with pytest.raises(ValueError, match="combination 'mean' is not one of log_odds, probability"):
        blend(network, baseline, 0.5, "mean")
