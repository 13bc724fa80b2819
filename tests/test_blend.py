"""The blend of the network and the baseline: the weight chosen on validation alone, 0 and 1
shipping either member unblended, any number of labels."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment.classifier.model.blend import (
    COMBINATIONS,
    WEIGHTS,
    blend,
    choose_blend,
    predicted,
)
from tests.conftest import compare


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


# The blend in TensorFlow ops, as an export would serve it.


@pytest.mark.parametrize("combination", COMBINATIONS)
@pytest.mark.parametrize("weight", [0.0, 0.35, 1.0])
@pytest.mark.parametrize("labels", [2, 3])
def test_the_blend_in_the_graph_gives_the_numpy_blend(combination, weight, labels, tmp_path):
    import keras
    import tensorflow as tf

    from sentiment.classifier.serving.blend_graph import Blend

    rng = np.random.default_rng(labels)
    if labels == 2:
        network, baseline = (rng.uniform(0, 1, (50, 1)).astype(np.float32) for _ in range(2))
        network[0, 0], baseline[1, 0] = 0.0, 1.0  # certainty: clipped, never infinite
    else:
        network, baseline = (rng.dirichlet(np.ones(labels), 50).astype(np.float32) for _ in "ab")
    layer = Blend(weight, combination)
    served = layer([tf.constant(network), tf.constant(baseline)]).numpy()
    members = (network[:, 0], baseline[:, 0]) if labels == 2 else (network, baseline)
    expected = blend(*members, weight, combination)
    assert served.dtype == np.float32 and served.shape == network.shape
    np.testing.assert_allclose(served[:, 0] if labels == 2 else served, expected, atol=1e-6)
    # the layer saves and loads with the model
    first, second = keras.Input((network.shape[1],)), keras.Input((network.shape[1],))
    model = keras.Model([first, second], Blend(weight, combination, name="blend")([first, second]))
    model.save(tmp_path / "blend.keras")
    loaded = keras.saving.load_model(tmp_path / "blend.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.predict([network, baseline], verbose=0), served)


def test_one_model_on_raw_text_serves_the_blend_of_both_models(tmp_path):
    import keras
    import tensorflow as tf

    from sentiment.classifier.data.synthetic import make_synthetic
    from sentiment.classifier.evaluation.baseline import fit_baseline_on_texts
    from sentiment.classifier.serving.blend_graph import blend_end_to_end_model
    from sentiment.classifier.serving.ngram_graph import baseline_end_to_end_model

    reviews = make_synthetic(200)
    fitted = fit_baseline_on_texts(reviews, validation_split=0.2, seed=1)
    baseline = baseline_end_to_end_model(fitted.model)
    # a stand-in network on raw text: the baseline's own probabilities, sharpened
    reviews_in = keras.Input(shape=(), dtype="string")
    sharpened = keras.layers.Lambda(lambda p: p**2 / (p**2 + (1 - p) ** 2))(baseline(reviews_in))
    network = keras.Model(reviews_in, sharpened)
    served = blend_end_to_end_model(network, baseline, weight=0.3, combination="log_odds")
    texts = [text for text, _ in reviews["test"][:40]] + ["", "unheard words"]
    ours = served.predict(tf.constant(texts), verbose=0)[:, 0]
    members = [model.predict(tf.constant(texts), verbose=0)[:, 0] for model in (network, baseline)]
    np.testing.assert_allclose(ours, blend(*members, 0.3, "log_odds"), atol=1e-6)
    # and as a SavedModel, through the export's serving signature
    from sentiment.classifier.serving import export

    export.write_saved_model(
        served, tmp_path / "saved_model", decision_threshold=0.5, label_names=["neg", "pos"]
    )
    signature = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    probabilities = signature(reviews=tf.constant(texts))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities[:, 1], ours, atol=1e-6)


# What ships, beside what could (evaluation/shipped.py): the evaluate stage's comparison.


def test_the_weight_is_chosen_without_the_test_labels():
    validation, test = planted(seed=1), planted(seed=2)
    flipped = (test[0], test[1], 1 - test[2])
    chosen, with_flipped = compare(validation, test), compare(validation, flipped)
    assert chosen.choice == with_flipped.choice
    assert chosen.blend_metrics()["weight"] == with_flipped.blend_metrics()["weight"]
    for name in ("network", "baseline", "blend"):
        ours, theirs = chosen.models[name], with_flipped.models[name]
        assert ours.validation_accuracy == theirs.validation_accuracy
        assert ours.test["accuracy"] == pytest.approx(1 - theirs.test["accuracy"])


@pytest.mark.parametrize("winner", ["network", "baseline", "blend"])
def test_the_validation_winner_ships_under_blend_and_each_ship_value_reports_its_model(winner):
    network, baseline, labels = planted(seed=4)
    perfect = np.where(labels == 1, 0.99, 0.01).astype(np.float32)
    members = {
        "network": (perfect, baseline),
        "baseline": (baseline, perfect),
        "blend": (network, baseline),
    }[winner]
    validation = (*members, labels)
    comparison = compare(validation, validation)
    expected_weight = {"network": 1.0, "baseline": 0.0}.get(winner)
    if expected_weight is not None:
        assert comparison.choice.weight == expected_weight
        # the blend at 0 or 1 is that member exactly: its test figures are the member's
        assert comparison.models["blend"].test == comparison.models[winner].test
    shipped = comparison.shipped_metrics()
    assert shipped["model"] == "blend" and shipped["validation_accuracy"] == 1.0
    best_member = max(m.validation_accuracy for n, m in comparison.models.items() if n != "blend")
    assert comparison.models["blend"].validation_accuracy >= best_member
    for ship in ("network", "baseline"):
        other = compare(validation, validation, ship=ship)
        figures = other.shipped_metrics()
        assert figures["model"] == ship
        assert figures["accuracy"] == other.models[ship].test["accuracy"]
        assert figures["validation_accuracy"] == round(other.models[ship].validation_accuracy, 6)
        assert other.blend_metrics() == comparison.blend_metrics()  # ship does not move the blend
    with pytest.raises(ValueError, match="ship 'svm' is not one of network, baseline, blend"):
        compare(validation, validation, ship="svm")


def test_three_labels_are_compared_with_macro_f1_and_the_weight_meant_in_words():
    from sentiment.classifier.model.blend import weight_meaning

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 300)
    network = rng.dirichlet([1, 1, 1], 300).astype(np.float32)
    network[np.arange(150), labels[:150]] += 2  # right on the first half
    baseline = rng.dirichlet([1, 1, 1], 300).astype(np.float32)
    baseline[np.arange(150, 300), labels[150:]] += 2  # right on the second
    network /= network.sum(axis=1, keepdims=True)
    baseline /= baseline.sum(axis=1, keepdims=True)
    validation = (network, baseline, labels)
    comparison = compare(validation, validation, label_names=("low", "middling", "high"))
    figures = comparison.blend_metrics()
    assert set(figures) == {
        "weight",
        "accuracy",
        "f1",
        "roc_auc",
        "log_loss",
        "validation_accuracy",
    }
    assert figures["f1"] == comparison.models["blend"].test["report"]["macro_avg"]["f1-score"]
    members = [comparison.models[name].validation_accuracy for name in ("network", "baseline")]
    assert figures["validation_accuracy"] > max(members)
    assert weight_meaning(1.0).startswith("weight 1: the network alone")
    assert weight_meaning(0.0).startswith("weight 0: the baseline alone")
    assert weight_meaning(0.15) == (
        "the blend's log-odds are 0.15 x the network's plus 0.85 x the baseline's"
    )
