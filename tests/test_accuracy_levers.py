"""The accuracy levers: adversarial and virtual adversarial training, word2vec initialisation."""

import hashlib
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from sentiment.classifier.data.batching import batch_dataset
from sentiment.classifier.model.inference import predict_probabilities
from sentiment.classifier.model.layers import EMBEDDING, PERTURBATION, normalised_table
from sentiment.classifier.model.network import build_model
from sentiment.classifier.training.adversarial import (
    AdversarialTrainer,
    unit_direction,
    word_frequencies,
)
from sentiment.classifier.training.fit import make_deterministic, train_model
from sentiment.classifier.training.objectives import binary_divergence
from sentiment.classifier.training.word_vectors import (
    id_sentences,
    load_word_vectors,
    train_word_vectors,
)
from sentiment.errors import PipelineError
from sentiment.params import Params, ParamsError
from tests.conftest import PROJECT_ROOT, small_configs

# Large enough to move a small model's predictions on the synthetic reviews (about 60 words of
# 8 normalised dimensions: a review's embeddings have a norm near 22).
STEP = 3.0


def test_normalised_table_has_frequency_weighted_mean_zero_and_variance_one():
    rng = np.random.default_rng(0)
    table = rng.normal(3.0, 2.0, size=(50, 6)).astype(np.float32)
    frequencies = rng.integers(0, 100, size=50).astype(np.float32)
    normalised = normalised_table(table, frequencies).numpy()
    weights = frequencies / frequencies.sum()
    assert np.allclose(weights @ normalised, 0.0, atol=1e-5)
    assert np.allclose(weights @ normalised**2, 1.0, atol=1e-4)


def test_word_frequencies_count_words_and_never_padding():
    ids = np.array([[0, 0, 2, 3, 2], [0, 1, 2, 4, 4]])
    assert word_frequencies(ids, 6).tolist() == [0, 1, 3, 1, 2, 0]


def test_unit_direction_has_norm_one_per_review_and_nothing_on_padding():
    values = tf.random.normal((3, 5, 4), seed=1) * tf.constant([1e-20, 1.0, 1e6])[:, None, None]
    mask = tf.constant([[True] * 5, [False, False, True, True, True], [True] * 5])
    direction = unit_direction(values, mask).numpy()
    assert np.allclose(np.sqrt((direction**2).sum(axis=(1, 2))), 1.0, atol=1e-5)
    assert not direction[1, :2].any()


def test_binary_divergence_is_zero_for_equal_predictions_and_positive_otherwise():
    p = tf.constant([[0.2], [0.9]])
    assert float(binary_divergence(p, p)) == pytest.approx(0.0, abs=1e-7)
    assert float(binary_divergence(p, tf.constant([[0.5], [0.5]]))) > 0.1


def test_adversarial_training_needs_one_device():
    with pytest.raises(ParamsError, match="adversarial training runs on one device"):
        Params().replace(adversarial=1.0, distribute="mirrored")
    with pytest.raises(ParamsError, match="adversarial must be at least 0"):
        Params().replace(adversarial=-1.0)


def _fitted_trainer(small_data, epochs=3, **overrides):
    """An AdversarialTrainer fitted as train_model fits it, kept (train_model folds it away)."""
    from sentiment.classifier.training.fit import _adversarial_trainer, _compiled_model

    splits, vocabulary = small_data
    model_config, training_config = small_configs(
        len(vocabulary) + 2, embedding_dim=8, units=8, epochs=epochs, **overrides
    )
    make_deterministic(training_config.seed)
    classifier = _compiled_model(model_config, training_config)
    trainer = _adversarial_trainer(classifier, model_config, training_config, splits["train"])
    batches = batch_dataset(splits["train"], batch_size=16, seed=1, by_length=True)
    trainer.fit(batches, epochs=epochs, verbose=0)
    return trainer


def _loss_under_attack(trainer, token_ids, labels):
    """Mean loss of the trained classifier (inference mode) on clean and on adversarially moved
    reviews, each moved by STEP along its own loss gradient."""
    layer = trainer.classifier.get_layer(PERTURBATION)
    token_ids, labels = tf.constant(token_ids), tf.constant(labels[:, None], tf.float32)
    loss = keras.losses.BinaryCrossentropy()
    with tf.GradientTape() as tape:
        clean = loss(labels, trainer.classifier(token_ids, training=False))
        embedded, mask = layer.seen
    layer.perturbation = STEP * unit_direction(tape.gradient(clean, embedded), mask)
    try:
        attacked = loss(labels, trainer.classifier(token_ids, training=False))
    finally:
        layer.perturbation = None
    return float(clean), float(attacked)


def test_adversarial_training_makes_the_model_robust_to_the_attack_it_trains_on(small_data):
    splits, _ = small_data
    test = splits["test"]
    # The same architecture (normalised embeddings) with a negligible step: plain training.
    plain = _loss_under_attack(_fitted_trainer(small_data, adversarial=1e-6), *_rows(test))
    robust = _loss_under_attack(_fitted_trainer(small_data, adversarial=STEP), *_rows(test))
    plain_rise, robust_rise = plain[1] - plain[0], robust[1] - robust[0]
    assert robust_rise < 0.5 * plain_rise, (plain, robust)


def test_virtual_adversarial_training_makes_predictions_smooth_around_reviews(small_data):
    splits, _ = small_data
    token_ids, _labels = _rows(splits["test"])

    def divergence_under_attack(trainer):
        # the virtual adversarial direction of each review, found as in training, at STEP
        layer = trainer.classifier.get_layer(PERTURBATION)
        ids = tf.constant(token_ids)
        reference = trainer.classifier(ids, training=False)
        embedded, mask = layer.seen
        start = 0.1 * unit_direction(tf.random.normal(tf.shape(embedded), seed=5), mask)
        with tf.GradientTape() as tape:
            tape.watch(start)
            layer.perturbation = start
            divergence = binary_divergence(reference, trainer.classifier(ids, training=False))
        layer.perturbation = STEP * unit_direction(tape.gradient(divergence, start), mask)
        try:
            return float(binary_divergence(reference, trainer.classifier(ids, training=False)))
        finally:
            layer.perturbation = None

    plain = divergence_under_attack(_fitted_trainer(small_data, virtual_adversarial=1e-6))
    smooth = divergence_under_attack(_fitted_trainer(small_data, virtual_adversarial=STEP))
    assert smooth < 0.5 * plain, (plain, smooth)


def _rows(split, count=400):
    return split.token_ids[:count], split.labels[:count].astype(np.float32)


@pytest.mark.parametrize(
    "levers", [{"adversarial": 1.0}, {"virtual_adversarial": 1.0, "pooling": "max"}]
)
def test_adversarial_training_saves_a_plain_model_that_predicts_as_the_trained_one(
    small_data, levers
):
    splits, vocabulary = small_data
    model_config, training_config = small_configs(
        len(vocabulary) + 2, embedding_dim=8, units=8, epochs=1, **levers
    )
    run = {"train": splits["train"], "validation": splits["validation"], "verbose": 0}
    model, history, _ = train_model(
        model_config=model_config, training_config=training_config, **run
    )
    names = {layer.__class__.__name__ for layer in model.layers}
    assert "NormalisedEmbedding" not in names and "EmbeddingPerturbation" not in names
    # the same config without the levers builds the same plain architecture
    assert len(model.get_weights()) == len(
        build_model(small_configs(len(vocabulary) + 2, embedding_dim=8, units=8)[0]).get_weights()
    )
    # the folded model scores the validation reviews as the trainer's validation did
    probabilities = predict_probabilities(model, splits["validation"].token_ids)
    accuracy = ((probabilities >= 0.5) == splits["validation"].labels).mean()
    assert accuracy == pytest.approx(history["val_accuracy"][-1], abs=1e-6)
    again, _, _ = train_model(model_config=model_config, training_config=training_config, **run)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        assert np.array_equal(a, b)  # seeded: the same weights


def test_an_ensemble_averages_members_trained_with_successive_seeds(small_data, tmp_path):
    from sentiment.classifier.model.fast_layers import with_stock_layers
    from sentiment.classifier.model.inference import model_masks_padding
    from sentiment.classifier.model.saving import load_trained_model, save_model
    from sentiment.classifier.serving.export import check_parity, end_to_end_model, serving_padding

    splits, vocabulary = small_data
    small = {"embedding_dim": 8, "units": 8, "epochs": 1, "adversarial": 1.0}
    model_config, training_config = small_configs(len(vocabulary) + 2, ensemble=2, **small)
    run = {"train": splits["train"], "validation": splits["validation"], "verbose": 0}
    model, history, _ = train_model(
        model_config=model_config, training_config=training_config, **run
    )
    assert len(history["val_accuracy"]) == 2  # one epoch of each member, in turn
    member_configs = [
        small_configs(len(vocabulary) + 2, seed=seed, **small)[1] for seed in (42, 43)
    ]
    members = [
        train_model(model_config=model_config, training_config=config, **run)[0]
        for config in member_configs
    ]
    token_ids = splits["validation"].token_ids
    votes = [predict_probabilities(member, token_ids) for member in members]
    assert np.abs(votes[0] - votes[1]).max() > 1e-3  # another seed, another member
    ensemble = predict_probabilities(model, token_ids)
    np.testing.assert_allclose(ensemble, (votes[0] + votes[1]) / 2, atol=1e-6)

    save_model(model, tmp_path / "model.keras")
    loaded = load_trained_model(tmp_path / "model.keras")
    assert model_masks_padding(loaded)
    np.testing.assert_array_equal(predict_probabilities(loaded, token_ids), ensemble)
    # served as the export stage serves it: stock layers behind the raw-text vectoriser
    served = end_to_end_model(
        with_stock_layers(loaded),
        vocabulary,
        max_length=token_ids.shape[1],
        padding=serving_padding("pre", mask_padding=True),
        truncating="pre",
    )
    words = ["unseenword", "unseenword", *vocabulary]  # ids 0 and 1: padding (dropped), unknown
    texts = tf.constant([" ".join(words[i] for i in row[row != 0]) for row in token_ids])
    check_parity(served.predict(texts, verbose=0)[:, 0], ensemble, "the served ensemble")


def test_an_ensemble_needs_one_device_and_a_member():
    with pytest.raises(ParamsError, match="ensemble must be at least 1"):
        Params().replace(ensemble=0)
    with pytest.raises(ParamsError, match="an ensemble trains its members on one device"):
        Params().replace(ensemble=2, distribute="mirrored")


def test_the_trainer_reports_the_clean_loss_and_accuracy(small_data):
    trainer = _fitted_trainer(small_data, epochs=1, adversarial=1.0)
    assert isinstance(trainer, AdversarialTrainer)
    assert [metric.name for metric in trainer.metrics] == ["loss", "accuracy"]
    frequencies = trainer.classifier.get_layer(EMBEDDING).word_frequencies.numpy()
    assert frequencies[0] == 0 and frequencies[2:].sum() > 0


# ---- word vectors ----


def _context_corpus(reviews=600, seed=0):
    """Ids 2 and 3 occur in the same reviews and contexts (ids 10..29), id 4 in others (30..49)."""
    rng = np.random.default_rng(seed)
    rows = []
    for review in range(reviews):
        targets, contexts = ([2, 3], (10, 30)) if review % 2 else ([4], (30, 50))
        row = []
        for _ in range(10):
            row += [int(rng.integers(*contexts)), int(rng.choice(targets))]
        rows.append([0] * 4 + row)  # padding first, as preprocess pads
    return np.array(rows)


def test_id_sentences_drop_padding_and_keep_order():
    assert id_sentences(np.array([[0, 0, 5, 2], [7, 1, 3, 9]])) == [
        ["5", "2"],
        ["7", "1", "3", "9"],
    ]


def test_word_vectors_place_words_of_the_same_contexts_together():
    table = train_word_vectors(_context_corpus(), vocab_size=60, dimensions=16, seed=1)
    assert table.shape == (60, 16) and table.dtype == np.float32
    assert not table[0].any() and not table[59].any()  # padding and an unseen id: zeros

    seen = table[table.any(axis=1)]
    centred = table - seen.mean(axis=0)  # word2vec vectors share a common direction

    def cosine(a, b):
        return float(
            centred[a] @ centred[b] / np.linalg.norm(centred[a] * np.linalg.norm(centred[b]))
        )

    assert cosine(2, 3) > cosine(2, 4) + 0.3, (cosine(2, 3), cosine(2, 4))


def test_word_vectors_are_the_same_bits_in_every_process():
    code = (
        "import hashlib, sys; sys.path.insert(0, '.');"
        "from tests.test_accuracy_levers import _context_corpus;"
        "from sentiment.classifier.training.word_vectors import train_word_vectors;"
        "t = train_word_vectors(_context_corpus(200), vocab_size=60, dimensions=8, seed=3);"
        "print(hashlib.md5(t.tobytes()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=PROJECT_ROOT,
            env=os.environ | {"PYTHONHASHSEED": hash_seed},  # the same BLAS settings
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in ("0", "1")
    }
    table = train_word_vectors(_context_corpus(200), vocab_size=60, dimensions=8, seed=3)
    assert digests == {hashlib.md5(table.tobytes()).hexdigest()}


def test_word_vectors_refuse_reviews_without_words():
    with pytest.raises(PipelineError, match="hold no words"):
        train_word_vectors(np.zeros((3, 5), dtype=int), vocab_size=10, dimensions=4, seed=1)


def test_a_vector_table_of_the_wrong_shape_or_kind_names_the_fix(tmp_path):
    np.save(tmp_path / "vectors.npy", np.zeros((10, 4), dtype=np.float32))
    with pytest.raises(PipelineError, match=r"holds 10 x 4 vectors but the model needs 12 x 4"):
        load_word_vectors(tmp_path / "vectors.npy", vocab_size=12, dimensions=4)
    (tmp_path / "bad.npy").write_text("not numpy")
    with pytest.raises(PipelineError, match="dvc repro word_vectors"):
        load_word_vectors(tmp_path / "bad.npy", vocab_size=12, dimensions=4)
    with pytest.raises(PipelineError, match="is missing"):
        load_word_vectors(tmp_path / "none.npy", vocab_size=12, dimensions=4)


def test_word2vec_initialisation_starts_the_embedding_from_the_vectors(small_data):
    splits, vocabulary = small_data
    vocab_size = len(vocabulary) + 2
    model_config, training_config = small_configs(
        vocab_size, embedding_init="word2vec", embedding_dim=8, units=8, epochs=1
    )
    vectors = train_word_vectors(
        splits["train"].token_ids, vocab_size=vocab_size, dimensions=8, seed=1
    )
    run = {"train": splits["train"], "validation": splits["validation"], "verbose": 0}
    with pytest.raises(PipelineError, match="needs the word_vectors stage"):
        train_model(model_config=model_config, training_config=training_config, **run)
    tiny_steps = training_config.__class__(**(vars(training_config) | {"learning_rate": 1e-9}))
    model, _, _ = train_model(
        model_config=model_config, training_config=tiny_steps, word_vectors=vectors, **run
    )
    assert np.allclose(model.get_layer(EMBEDDING).get_weights()[0], vectors, atol=1e-4)


# ---- arithmetic ----


def test_training_flops_count_the_recurrent_products_and_the_adversarial_passes():
    from sentiment.measurement.flops import passes_per_step, training_flops_per_review

    # one LSTM direction of 4 gates, (128 + 128) inputs to 4 x 128 outputs: 2 FLOPs a multiply-add
    params = Params().replace(embedding_dim=128, units=128)
    per_word = 2 * 2 * 4 * 128 * 256
    assert training_flops_per_review(params, 100.0) == per_word * 100 * 3
    assert passes_per_step(0.0, 0.0) == 3
    assert passes_per_step(5.0, 0.0) == 8  # + the embeddings' gradient + the perturbed pass
    assert passes_per_step(5.0, 5.0) == 14


def test_matmul_throughput_is_measured():
    from sentiment.measurement.flops import matmul_gflops

    assert matmul_gflops(64, 64, 64, seconds=0.1) > 0.01
