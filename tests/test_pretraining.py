"""Language-model pretraining (training/language_model.py, stages/pretrain.py): each direction
predicts words it has not read, the text is learnt, deterministically, the classifier starts from
the weights, weights that do not fit are refused, and DVC runs the stage only when asked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentiment.errors import PipelineError
from tests.conftest import dvc, make_project, small_configs


def _language_model(vocab_size: int, **overrides):
    from sentiment.classifier.training.language_model import LanguageModel

    model_config, _ = small_configs(vocab_size, **overrides)
    return LanguageModel(model_config)


@pytest.mark.parametrize(
    "setting",
    [
        {"padding": "pre"},
        {"padding": "post"},
        {"padding": "pre", "stock": True},
        {"padding": "pre", "cell": "gru"},
        {"padding": "pre", "bidirectional": False},
    ],
    ids=["pre", "post", "stock-layers", "gru", "forward-only"],
)
def test_each_direction_reads_only_the_words_on_its_side_of_the_word_it_predicts(setting):
    import dataclasses

    from sentiment.classifier.training.language_model import LanguageModel

    setting = dict(setting)
    stock = setting.pop("stock", False)
    padding = setting["padding"]
    model_config, _ = small_configs(50, **setting)
    model = LanguageModel(dataclasses.replace(model_config, stock_layers=stock))
    rng = np.random.default_rng(0)
    words, width, where = 7, 10, 3  # a review of 7 words in 10 steps; word 3 changes
    row = np.zeros((1, width), dtype=np.int32)
    start = width - words if padding == "pre" else 0
    row[0, start : start + words] = rng.integers(2, 50, words)
    changed = row.copy()
    changed[0, start + where] = 1 if row[0, start + where] != 1 else 2
    before, after = (
        [np.asarray(states)[0] for states in model.states(ids)] for ids in (row, changed)
    )
    steps = np.arange(width) - start  # each step's word number (negative or past 6: padding)
    read_before = (steps >= 0) & (steps < where)  # the forward states that predict word 3 ...
    np.testing.assert_array_equal(before[0][read_before], after[0][read_before])
    assert not np.allclose(before[0][steps == where], after[0][steps == where])
    if model_config.bidirectional:  # ... and the backward ones, from the words after it
        read_after = (steps > where) & (steps < words)
        np.testing.assert_array_equal(before[1][read_after], after[1][read_after])
        assert not np.allclose(before[1][steps == where], after[1][steps == where])


def test_pretraining_learns_the_text_the_same_way_twice_and_starts_the_classifier(
    small_data, tmp_path
):
    from sentiment.classifier.model.network import build_model
    from sentiment.classifier.training.language_model import pretrain, save_pretrained
    from sentiment.classifier.training.pretrained import load_pretrained, start_from_pretrained

    splits, vocabulary = small_data
    model_config, training_config = small_configs(len(vocabulary) + 2, pooling="max")
    runs = [
        pretrain(
            splits["train"],
            splits["test"],  # as unlabelled text
            splits["validation"],
            model_config=model_config,
            training_config=training_config,
            epochs=2,
            verbose=0,
        )
        for _ in range(2)
    ]
    (model, history), (again, _) = runs
    uniform = np.log(model.classes) * 2  # two directions, each guessing uniformly
    assert history["val_loss"][1] < history["val_loss"][0] < uniform
    for ours, theirs in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)  # same params, same bits

    save_pretrained(model, tmp_path / "weights.npz")
    weights = load_pretrained(tmp_path / "weights.npz")
    classifier = build_model(model_config)
    start_from_pretrained(classifier, model_config, weights)
    embedding = classifier.get_layer("embedding").get_weights()[0]
    np.testing.assert_array_equal(embedding, weights["embedding"])
    for index, weight in enumerate(classifier.get_layer("bidirectional").get_weights()):
        np.testing.assert_array_equal(weight, weights[f"recurrent_{index}"])


def test_with_adversarial_training_it_learns_on_the_embedding_the_classifier_will_see(
    small_data, tmp_path
):
    from sentiment.classifier.model.layers import NormalisedEmbedding
    from sentiment.classifier.model.network import build_model
    from sentiment.classifier.training.adversarial import word_frequencies
    from sentiment.classifier.training.language_model import pretrain, save_pretrained
    from sentiment.classifier.training.pretrained import load_pretrained, start_from_pretrained

    splits, vocabulary = small_data
    model_config, training_config = small_configs(
        len(vocabulary) + 2, pooling="max", adversarial=1.0
    )
    train = splits["train"]
    model, _ = pretrain(
        train,
        splits["test"],
        splits["validation"],
        model_config=model_config,
        training_config=training_config,
        epochs=1,
        verbose=0,
    )
    frequencies = word_frequencies(train.token_ids, model_config.vocab_size)
    assert isinstance(model.embedding, NormalisedEmbedding)
    np.testing.assert_array_equal(model.embedding.word_frequencies.numpy(), frequencies)
    save_pretrained(model, tmp_path / "weights.npz")
    classifier = build_model(model_config)
    start_from_pretrained(classifier, model_config, load_pretrained(tmp_path / "weights.npz"))
    embedding = classifier.get_layer("embedding")
    embedding.word_frequencies.assign(frequencies)  # as adversarial training sets them
    ids = train.token_ids[:4]
    np.testing.assert_array_equal(np.asarray(embedding(ids)), np.asarray(model.embedding(ids)))


def test_pretrained_weights_that_do_not_fit_the_model_are_refused_in_one_line(tmp_path):
    from sentiment.classifier.model.network import build_model
    from sentiment.classifier.training.language_model import save_pretrained
    from sentiment.classifier.training.pretrained import load_pretrained, start_from_pretrained

    save_pretrained(_language_model(50, units=8), tmp_path / "weights.npz")
    model_config, _ = small_configs(50)  # 16 units
    with pytest.raises(PipelineError, match=r"do not fit the model .*run `dvc repro pretrain`$"):
        start_from_pretrained(
            build_model(model_config), model_config, load_pretrained(tmp_path / "weights.npz")
        )
    (tmp_path / "broken.npz").write_bytes(b"not an archive")
    with pytest.raises(PipelineError, match=r"broken.npz is not the pretrain stage's weights"):
        load_pretrained(tmp_path / "broken.npz")
    with pytest.raises(PipelineError, match=r"missing.npz is missing: run `dvc repro pretrain`"):
        load_pretrained(tmp_path / "missing.npz")


def test_dvc_pretrains_on_request_and_train_starts_from_it(tmp_path):
    repo, run = make_project(tmp_path / "project", epochs=1)
    output = dvc(run, "repro", "train")
    assert "pretrain: pretrain_epochs is 0, nothing to train" in output
    assert "start from the pretrain stage's" not in output
    run("git", "add", "-A")
    run("git", "commit", "-qm", "without pretraining")

    output = dvc(run, "exp", "run", "-S", "pretrain_epochs=1", "train")
    assert "Running stage 'pretrain'" in output and "Running stage 'word_vectors'" not in output
    assert "pretrain: 1 epochs over 1,600 training reviews and 0 unlabelled texts" in output
    assert "train: the embedding and the recurrent layer start from the pretrain stage's" in output
    history = json.loads((repo / "data/pretrained/history.json").read_text())
    assert history["epochs"] == 1 and history["texts"] == 1600 and len(history["val_loss"]) == 1
    assert (repo / "data/pretrained/weights.npz").is_file()

    output = dvc(run, "exp", "run", "-S", "pretrain_epochs=1", "-S", "epochs=2", "train")
    assert "Running stage 'pretrain'" not in output and "Running stage 'train'" in output
