import numpy as np

from sentiment.classifier.evaluation.metrics import score_predictions
from sentiment.classifier.model.inference import predict_probabilities
from sentiment.classifier.training.fit import train_model
from tests.conftest import small_configs, vectorize_texts


def tiny_training(small_data, seed=3):
    splits, vocabulary = small_data
    model_config, training_config = small_configs(
        len(vocabulary) + 2, seed=seed, embedding_dim=4, units=4, batch_size=64, epochs=1
    )
    return train_model(
        train=splits["train"],
        validation=splits["validation"],
        model_config=model_config,
        training_config=training_config,
        verbose=0,
    )[:2]


def test_same_seed_gives_identical_weights_and_history(small_data):
    first, first_history = tiny_training(small_data)
    second, second_history = tiny_training(small_data)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert first_history == second_history


def test_another_seed_gives_other_weights(small_data):
    first, _ = tiny_training(small_data, seed=3)
    second, _ = tiny_training(small_data, seed=4)
    assert not np.array_equal(first.get_weights()[0], second.get_weights()[0])


def test_trained_model_learns_the_synthetic_sentiment(small_data, trained_model):
    splits, _ = small_data
    probabilities = predict_probabilities(trained_model, splits["test"].token_ids)
    metrics = score_predictions(splits["test"].labels, probabilities, decision_threshold=0.5)
    assert metrics["accuracy"] > 0.9 and metrics["roc_auc"] > 0.95


def test_clear_reviews_negation_and_late_turns_score_the_right_way(small_data, trained_model):
    _, vocabulary = small_data
    # as long as the synthetic reviews it learnt from (25 to 90 words)
    filler = "the director of the movie had a script with a plot for the audience in its hour"
    reviews = {
        f"The film was wonderful and {filler}.": 1,
        f"The film was boring and {filler}.": 0,
        f"The film was not dreadful and {filler}.": 1,
        f"The film was not great and {filler}.": 0,
        f"The film was awful and {filler} but in the end it was brilliant.": 1,
        f"The film was superb and {filler} but in the end it was tedious.": 0,
    }
    ids, _ = vectorize_texts(reviews, vocabulary, max_length=100, padding="pre", truncating="pre")
    probabilities = predict_probabilities(trained_model, ids)
    assert ((probabilities >= 0.5).astype(int) == list(reviews.values())).all(), probabilities


def test_metrics_hold_the_report_and_the_confusion_matrix():
    labels = np.array([0, 0, 1, 1, 1])
    probabilities = np.array([0.1, 0.7, 0.8, 0.4, 0.9])
    metrics = score_predictions(labels, probabilities, decision_threshold=0.5)
    assert metrics["accuracy"] == 0.6
    assert metrics["confusion_matrix"] == {
        "true_negative": 1,
        "false_positive": 1,
        "false_negative": 1,
        "true_positive": 2,
    }
    assert metrics["report"]["positive"]["precision"] == round(2 / 3, 6)
    assert metrics["report"]["negative"]["support"] == 2
    assert metrics["roc_auc"] == round(5 / 6, 6)
