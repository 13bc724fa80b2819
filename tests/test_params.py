import dataclasses
import typing

import pytest
import yaml

from sentiment.params import (
    STAGE_PARAMS,
    ModelConfig,
    Params,
    ParamsError,
    TrainingConfig,
    config_knobs,
    load_params,
    params_from_mapping,
)
from tests.conftest import PROJECT_ROOT


def test_committed_params_file_holds_every_key_with_the_chosen_defaults():
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    assert set(raw) == {field.name for field in dataclasses.fields(Params)}
    assert load_params(PROJECT_ROOT / "params.yaml") == Params()
    assert (Params.vocab_size, Params.max_length, Params.embedding_dim, Params.units) == (
        5000,
        300,
        32,
        32,
    )
    assert Params.pooling == "max"
    assert (Params.merge_mode, Params.batch_size, Params.validation_split) == ("sum", 128, 0.2)
    assert (Params.epochs, Params.patience, Params.dropout) == (50, 3, 0.3)
    assert Params.ship == "blend"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"merge_mode": "avg"}, "merge_mode 'avg' is not one of sum, mul, concat, ave, none"),
        ({"epochs": -1}, "epochs must be at least 1, got -1"),
        ({"patience": -1}, "patience must be at least 0, got -1"),
        ({"patience": 2.5}, "patience must be a whole number, got 2.5"),
        ({"units": "ten"}, "units must be a whole number, got 'ten'"),
        ({"units": True}, "units must be a whole number, got True"),
        ({"bidirectional": "yes"}, "bidirectional must be true or false"),
        ({"validation_split": 1.0}, "validation_split must be strictly between 0.0 and 1.0"),
        ({"cell": "transformer"}, "cell 'transformer' is not one of lstm, gru, simple_rnn"),
        ({"learning_rate": 0}, "learning_rate must be above 0.0"),
        ({"dropout": 1.0}, "dropout must be at least 0.0 and below 1.0, got 1.0"),
        ({"pooling": "attention"}, "pooling 'attention' is not one of last, max, mean"),
        ({"word_dropout": -0.1}, "word_dropout must be at least 0.0 and below 1.0, got -0.1"),
        (
            {"bidirectional": False, "backward_cell": "gru"},
            "backward_cell 'gru' needs bidirectional",
        ),
        ({"ship": "svm"}, "ship 'svm' is not one of network, baseline, blend"),
        (
            {"ship": "blend", "export_tflite": True},
            "export_tflite is the network's (token ids in) and ship is 'blend'",
        ),
        (
            {"ship": "baseline", "export_tflite": True},
            "export_tflite is the network's (token ids in) and ship is 'baseline'",
        ),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(overrides, message):
    with pytest.raises(ParamsError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        params_from_mapping(dataclasses.asdict(Params()) | overrides)


def test_a_typo_key_is_refused_with_the_closest_valid_key():
    with pytest.raises(
        ParamsError, match=r"unknown key 'merge_mod' in params\.yaml: did you mean 'merge_mode'"
    ):
        params_from_mapping({"merge_mod": "ave"})


def test_every_merge_mode_is_accepted():
    for mode in ("sum", "mul", "concat", "ave", "none"):
        assert params_from_mapping({"merge_mode": mode}).merge_mode == mode


def test_integers_are_accepted_where_floats_are_expected():
    assert params_from_mapping({"learning_rate": 1}).learning_rate == 1.0


def test_invalid_yaml_and_missing_file_give_one_line_errors(tmp_path):
    broken = tmp_path / "params.yaml"
    broken.write_text("merge_mode: [sum\n")
    with pytest.raises(ParamsError, match="is not valid YAML"):
        load_params(broken)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "absent.yaml")


def test_stage_params_are_validated_against_the_whole_file(tmp_path):
    from sentiment.params import stage_params

    # written by hand, as a user would
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(dataclasses.asdict(Params()) | {"epochs": 0}))  # a train knob
    with pytest.raises(ParamsError, match="epochs"):
        stage_params("download", path)


def test_every_param_is_read_by_some_stage():
    read = {name for names in STAGE_PARAMS.values() for name in names}
    assert read == {field.name for field in dataclasses.fields(Params)}


@pytest.mark.parametrize("field", dataclasses.fields(Params), ids=lambda field: field.name)
def test_every_param_has_a_one_line_meaning_in_the_schema(field):
    meaning = field.metadata.get("help", "")
    assert meaning.strip() and "\n" not in meaning and len(meaning) <= 80, field.name


@pytest.mark.parametrize("config", [ModelConfig, TrainingConfig])
def test_each_config_copies_params_of_the_same_name_and_type(config):
    schema = typing.get_type_hints(Params)
    fields = typing.get_type_hints(config)
    knobs = config_knobs(config)
    assert knobs and all(fields[name] is schema[name] for name in knobs)
    assert set(config.GIVEN).isdisjoint(knobs)


def test_configs_built_from_params_hold_their_values():
    params = Params().replace(units=7, epochs=2, padding="post")
    model = ModelConfig.from_params(params, vocab_size=99)
    training = TrainingConfig.from_params(params)
    assert (model.units, model.padding, model.vocab_size, model.stock_layers) == (
        7,
        "post",
        99,
        False,
    )
    assert (training.epochs, training.seed) == (2, params.seed)


def test_the_train_stage_reads_exactly_what_its_configs_read():
    assert set(STAGE_PARAMS["train"]) == set(config_knobs(ModelConfig)) | set(
        config_knobs(TrainingConfig)
    )


def test_changed_params_are_checked_like_the_file():
    with pytest.raises(ParamsError, match=r"^epochs must be at least 1, got 0"):
        Params().replace(epochs=0)
    with pytest.raises(ParamsError, match="unknown key 'unit' in the changed params"):
        Params().replace(unit=3)
