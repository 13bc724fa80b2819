"""The one params schema: every knob, its default, its meaning, its check, and who reads it.

The model and training code take the typed configs built here from Params (ModelConfig,
TrainingConfig), never loose keyword lists: a new knob is a Params field (with its meaning and
its check below), its line in params.yaml and dvc.yaml, a config field, and the code that uses it.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from sentiment.errors import PipelineError

# Built-in datasets; any other `dataset` value is a path in the repository to the user's data
# (classifier/data/files.py reads it).
BUILT_IN_DATASETS = ("imdb", "synthetic")
# Built-in unlabelled sources; any other `unlabelled` value is a path in the repository to the
# user's texts (classifier/data/unlabelled.py reads it).
BUILT_IN_UNLABELLED = ("none", "imdb")
PAD_SIDES = ("pre", "post")
CELLS = ("lstm", "gru", "simple_rnn")
# "same" mirrors the forward cell; any cell name gives the backward direction its own kind.
BACKWARD_CELLS = ("same", *CELLS)
MERGE_MODES = ("sum", "mul", "concat", "ave", "none")
POOLINGS = ("last", "max", "mean")
# random: Keras' uniform start; word2vec: vectors learnt from the training reviews' text first
EMBEDDING_INITS = ("random", "word2vec")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
# tf.distribute strategies (sentiment/distribution.py); batch_size is the global batch in all
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")
# What the export serves: the network, the NBSVM baseline's n-gram model (the baseline stage's),
# or their blend, its weight chosen on the validation split
SHIPPED = ("network", "baseline", "blend")

T = TypeVar("T")


class ParamsError(PipelineError):
    """A params.yaml value or key that the pipeline cannot run with."""


def knob(default: T, meaning: str) -> T:
    """A Params field: its default and its one-line meaning (the reference a newcomer reads)."""
    return field(default=default, metadata={"help": meaning})


@dataclass(frozen=True)
class Params:
    """Every knob of the pipeline; defaults: the tutorial's model, wider, max-pooled and trained
    with early stopping."""

    seed: int = knob(42, "seeds the validation split, the weights' initialisation and batch order")
    # download
    dataset: str = knob("imdb", "imdb, synthetic, or a data file or folder in the repository")
    text_column: str = knob("text", "the column of a data file that holds each review's text")
    label_column: str = knob("label", "the column of a data file that holds each review's label")
    labels: str = knob("", "the labels in order, comma-separated; empty: sorted (numbers by value)")
    positive_label: str = knob(
        "", "with two labels, the positive one (threshold, ROC, PR curve); empty: the 2nd"
    )
    test_split: float = knob(
        0.2, "share of the reviews held out for testing when the data has no test file"
    )
    synthetic_reviews: int = knob(2000, "reviews per split when dataset is synthetic")
    synthetic_labels: int = knob(2, "labels of the synthetic reviews: 2, or more for graded ones")
    # unlabelled
    unlabelled: str = knob(
        "none", "none, imdb (its 50,000 unlabelled reviews), or a file or folder of texts"
    )
    # preprocess
    vocab_size: int = knob(5000, "token ids kept, padding (0) and out-of-vocabulary (1) included")
    max_length: int = knob(300, "tokens per review after padding or truncation")
    padding: str = knob("pre", "pre or post: which side of a short review the padding zeros go")
    truncating: str = knob("pre", "pre or post: pre keeps a long review's last tokens")
    validation_split: float = knob(0.2, "share of the training reviews held out for validation")
    # model
    embedding_dim: int = knob(32, "length of each word's embedding vector")
    embedding_init: str = knob(
        "random", "random, or word2vec: start from vectors learnt on the training reviews"
    )
    cell: str = knob("lstm", "the recurrent layer: lstm, gru or simple_rnn")
    units: int = knob(32, "units of the recurrent layer, in each direction")
    bidirectional: bool = knob(True, "read each review both ways; false: forward only")
    merge_mode: str = knob("sum", "how the two directions combine: sum, mul, concat, ave, or none")
    backward_cell: str = knob("same", "the backward layer's cell; same: as the forward layer's")
    mask_padding: bool = knob(True, "skip padding steps (exact, and lets batches be cut short)")
    pooling: str = knob("max", "max over all steps, mean, or the last output (the tutorial's)")
    dropout: float = knob(
        0.3, "share of embedding channels and pooled features dropped in training"
    )
    word_dropout: float = knob(0.0, "share of a review's words hidden (as unknown) in training")
    adversarial: float = knob(
        0.0, "norm of the adversarial step on a review's normalised embeddings; 0: off"
    )
    virtual_adversarial: float = knob(
        0.0, "norm of the virtual adversarial step (needs no labels); 0: off"
    )
    unlabelled_ratio: float = knob(
        0.0, "unlabelled texts per labelled review in each virtual adversarial step; 0: none"
    )
    # pretrain
    pretrain_epochs: int = knob(
        0, "passes of language-model pretraining over all the text before training; 0: off"
    )
    # train
    optimizer: str = knob("adam", "the optimiser: adam, rmsprop or sgd")
    learning_rate: float = knob(0.001, "the optimiser's step size")
    weight_averaging: float = knob(0.0, "momentum of a moving average of the weights; 0: off")
    batch_size: int = knob(128, "reviews per training step, over all devices together")
    epochs: int = knob(50, "the most passes over the training reviews")
    patience: int = knob(
        3, "epochs without a better validation loss before training stops; 0: all epochs run"
    )
    ensemble: int = knob(
        1, "models trained with seeds seed, seed + 1, ...; the saved model averages them"
    )
    distribute: str = knob("none", "tf.distribute strategy: none, mirrored or multi_worker")
    # evaluate / export
    decision_threshold: float = knob(0.5, "probability at or above which a review is positive")
    export_tflite: bool = knob(False, "also export a TensorFlow Lite model over token ids")
    ship: str = knob(
        "blend", "what the export serves: blend (of the two below), network or baseline"
    )

    def replace(self, **changes: Any) -> Params:
        """These params with some values changed, each checked as a params.yaml value is."""
        return params_from_mapping(dataclasses.asdict(self) | changes, source="the changed params")


def config_knobs(config: type) -> tuple[str, ...]:
    """The params a config class is built from: its fields but those the caller gives."""
    return tuple(item.name for item in dataclasses.fields(config) if item.name not in config.GIVEN)


def _knobs(config: type, params: Params) -> dict[str, Any]:
    return {name: getattr(params, name) for name in config_knobs(config)}


@dataclass(frozen=True)
class ModelConfig:
    """What build_model reads: Params' model knobs, and what the data and the caller give."""

    # given: the embedding's rows, the vocabulary preprocess kept plus padding and unknown ids
    # (at most the vocab_size param, fewer when the data has fewer words)
    vocab_size: int
    embedding_dim: int
    embedding_init: str  # word2vec: train_model is given the word_vectors stage's table
    cell: str
    units: int
    bidirectional: bool
    merge_mode: str
    backward_cell: str
    mask_padding: bool
    pooling: str
    dropout: float
    word_dropout: float
    adversarial: float  # these two add training-only layers (sentiment/adversarial.py)
    virtual_adversarial: float
    padding: str  # the data's padding side: it decides only whether cuDNN can run on a GPU
    stock_layers: bool = False  # given: Keras' own LSTM and Embedding, not their fast twins
    # given: the data's labels; two get one sigmoid output (the positive label's probability),
    # more a softmax over them
    classes: int = 2

    GIVEN: ClassVar[tuple[str, ...]] = ("vocab_size", "stock_layers", "classes")

    @classmethod
    def from_params(
        cls, params: Params, *, vocab_size: int, stock_layers: bool = False, classes: int = 2
    ) -> ModelConfig:
        """The model knobs of params, with the vocabulary and the labels the data gives."""
        return cls(
            vocab_size=vocab_size, stock_layers=stock_layers, classes=classes, **_knobs(cls, params)
        )


@dataclass(frozen=True)
class TrainingConfig:
    """What train_model reads besides the model: seed, optimiser, batches, epochs, devices."""

    seed: int
    optimizer: str
    learning_rate: float
    weight_averaging: float
    batch_size: int  # the global batch, split over a strategy's replicas
    epochs: int  # a ceiling when patience is above 0
    patience: int  # 0: every epoch runs, the last kept; else early stopping, the best kept
    ensemble: int  # members trained one after another, averaged into one model
    distribute: str
    # unlabelled texts per labelled review in each step, for the virtual adversarial term only
    unlabelled_ratio: float

    GIVEN: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_params(cls, params: Params) -> TrainingConfig:
        """The training knobs of params."""
        return cls(**_knobs(cls, params))


# The params each stage reads; dvc.yaml declares exactly these (a test holds the two together),
# so a change re-runs only the stages it touches.
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "download": (
        "dataset",
        "text_column",
        "label_column",
        "labels",
        "positive_label",
        "test_split",
        "synthetic_reviews",
        "synthetic_labels",
        "seed",
    ),
    # the unlabelled texts are de-duplicated against download's reviews; a data file's texts are
    # in its text_column
    "unlabelled": ("unlabelled", "text_column"),
    "preprocess": ("vocab_size", "max_length", "padding", "truncating", "validation_split", "seed"),
    "word_vectors": ("embedding_init", "embedding_dim", "seed"),
    # the language model is the classifier's embedding and recurrent layer, trained like it
    "pretrain": (
        "pretrain_epochs",
        "embedding_init",
        "embedding_dim",
        "cell",
        "units",
        "bidirectional",
        "backward_cell",
        "mask_padding",
        "padding",  # with the cell, whether the recurrent layer may use cuDNN on a GPU
        "dropout",
        # either normalises the embedding (training/adversarial.py), pretrained normalised too
        "adversarial",
        "virtual_adversarial",
        "optimizer",
        "learning_rate",
        "batch_size",
        "seed",
    ),
    # train reads its params only through these two configs
    "train": config_knobs(TrainingConfig) + config_knobs(ModelConfig),
    # the baseline reads the splits preprocess carved; its own draws follow the seed
    "baseline": ("seed",),
    "evaluate": ("decision_threshold", "ship"),  # ship: which model the report says ships
    "figures": (),  # draws what evaluate and train wrote; no knob of its own
    # export writes every param into the model card, so it reads them all
    "export": tuple(item.name for item in dataclasses.fields(Params)),
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "padding": PAD_SIDES,
    "truncating": PAD_SIDES,
    "cell": CELLS,
    "backward_cell": BACKWARD_CELLS,
    "merge_mode": MERGE_MODES,
    "pooling": POOLINGS,
    "embedding_init": EMBEDDING_INITS,
    "optimizer": OPTIMIZERS,
    "distribute": DISTRIBUTIONS,
    "ship": SHIPPED,
}
# (lowest, highest or None, which bounds are allowed: "[]" both, "()" neither, "[)" the lowest)
_RANGES: dict[str, tuple[float, float | None, str]] = {
    "seed": (0, None, "[]"),
    "synthetic_reviews": (20, None, "[]"),
    "synthetic_labels": (2, 10, "[]"),
    "test_split": (0.0, 1.0, "()"),
    "vocab_size": (3, None, "[]"),
    "max_length": (1, None, "[]"),
    "validation_split": (0.0, 1.0, "()"),
    "embedding_dim": (1, None, "[]"),
    "units": (1, None, "[]"),
    "dropout": (0.0, 1.0, "[)"),
    "word_dropout": (0.0, 1.0, "[)"),
    "adversarial": (0.0, None, "[]"),
    "virtual_adversarial": (0.0, None, "[]"),
    "unlabelled_ratio": (0.0, None, "[]"),
    "pretrain_epochs": (0, None, "[]"),
    "learning_rate": (0.0, None, "()"),
    "weight_averaging": (0.0, 1.0, "[)"),
    "batch_size": (1, None, "[]"),
    "epochs": (1, None, "[]"),
    "patience": (0, None, "[]"),
    "ensemble": (1, None, "[]"),
    "decision_threshold": (0.0, 1.0, "()"),
}


def _check_type(key: str, value: Any, expected: type) -> Any:
    # YAML gives bools for true/false and Python counts bool as int: keep them apart.
    if expected is bool:
        if isinstance(value, bool):
            return value
        raise ParamsError(f"{key} must be true or false, got {value!r}")
    if expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ParamsError(f"{key} must be a whole number, got {value!r}")
    if expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ParamsError(f"{key} must be a number, got {value!r}")
    if isinstance(value, str):
        return value
    raise ParamsError(f"{key} must be text, got {value!r}")


def _check_value(key: str, value: Any) -> None:
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ParamsError(f"{key} {value!r} is not one of {', '.join(_CHOICES[key])}")
    if key in _RANGES:
        low, high, bounds = _RANGES[key]
        above_low = value >= low if bounds[0] == "[" else value > low
        below_high = high is None or (value <= high if bounds[1] == "]" else value < high)
        if not (above_low and below_high):
            raise ParamsError(f"{key} must be {_describe_range(low, high, bounds)}, got {value!r}")


def _describe_range(low: float, high: float | None, bounds: str) -> str:
    if high is None:
        return f"at least {low}" if bounds[0] == "[" else f"above {low}"
    return {
        "[]": f"between {low} and {high}",
        "()": f"strictly between {low} and {high}",
        "[)": f"at least {low} and below {high}",
    }[bounds]


def label_list(labels: str) -> list[str]:
    """The `labels` param as a list ([] when empty: the data's labels, sorted)."""
    return [label.strip() for label in labels.split(",")] if labels.strip() else []


def _inside_repository(value: str) -> bool:
    """Whether a param's value is a relative path that stays inside the repository."""
    path = Path(value)
    return bool(value) and not path.is_absolute() and ".." not in path.parts


def _check_dataset(params: Params) -> None:
    dataset = params.dataset.strip()
    if dataset in BUILT_IN_DATASETS:
        return
    if not _inside_repository(dataset):
        raise ParamsError(
            f"dataset {params.dataset!r} is not {' or '.join(BUILT_IN_DATASETS)} nor a path inside "
            "the repository: put the data under data/ (`dvc add data/my_reviews.csv`) and give "
            "that path"
        )
    for key in ("text_column", "label_column"):
        if not getattr(params, key).strip():
            raise ParamsError(f"{key} is empty: name the column of the data file")
    if params.text_column == params.label_column:
        raise ParamsError(
            f"text_column and label_column are both {params.text_column!r}: name two columns"
        )


def _check_unlabelled(params: Params) -> None:
    unlabelled = params.unlabelled.strip()
    if unlabelled in BUILT_IN_UNLABELLED:
        return
    if unlabelled in BUILT_IN_DATASETS or not _inside_repository(unlabelled):
        raise ParamsError(
            f"unlabelled {params.unlabelled!r} is not {' or '.join(BUILT_IN_UNLABELLED)} nor a "
            "path inside the repository: put the texts under data/ (`dvc add data/texts.txt`) "
            "and give that path"
        )
    if not params.text_column.strip():
        raise ParamsError("text_column is empty: name the column of the unlabelled texts")


def _check_labels(params: Params) -> None:
    labels = label_list(params.labels)
    if labels and (len(set(labels)) != len(labels) or "" in labels or len(labels) < 2):
        raise ParamsError(
            f"labels {params.labels!r} must name two or more different labels, comma-separated "
            "(or be empty: the data's labels, sorted)"
        )
    if params.positive_label and labels:
        if params.positive_label not in labels:
            raise ParamsError(
                f"positive_label {params.positive_label!r} is not one of labels ({params.labels})"
            )
        if len(labels) > 2:
            raise ParamsError(
                f"positive_label is for two labels, and labels names {len(labels)}: set "
                "positive_label: '' (with more, every label is scored one-vs-rest)"
            )


def _check_combination(params: Params) -> None:
    _check_dataset(params)
    _check_unlabelled(params)
    _check_labels(params)
    if not params.bidirectional and params.backward_cell != "same":
        raise ParamsError(
            f"backward_cell {params.backward_cell!r} needs bidirectional: true "
            "(set backward_cell: same for a unidirectional model)"
        )
    if params.adversarial or params.virtual_adversarial:
        _check_one_device(
            params, "adversarial training runs", "adversarial and virtual_adversarial to 0"
        )
    if params.ensemble > 1:
        _check_one_device(params, "an ensemble trains its members", "ensemble: 1")
    if params.unlabelled_ratio and not params.virtual_adversarial:
        raise ParamsError(
            f"unlabelled_ratio {params.unlabelled_ratio:g} feeds unlabelled texts to the virtual "
            "adversarial term, which is off: set virtual_adversarial above 0 (e.g. 5.0) or "
            "unlabelled_ratio: 0"
        )
    if params.unlabelled_ratio and params.unlabelled.strip() == "none":
        raise ParamsError(
            f"unlabelled_ratio {params.unlabelled_ratio:g} needs unlabelled text and unlabelled "
            "is none: set unlabelled: imdb (or a file of texts) or unlabelled_ratio: 0"
        )
    if params.export_tflite and params.ship != "network":
        raise ParamsError(
            f"export_tflite is the network's (token ids in) and ship is {params.ship!r}, which "
            "reads raw text: set export_tflite: false or ship: network"
        )


def _check_one_device(params: Params, what: str, switch_off: str) -> None:
    if params.distribute != "none":
        raise ParamsError(
            f"{what} on one device: set distribute: none (got {params.distribute!r}) "
            f"or {switch_off}"
        )


def check_for_labels(params: Params, labels: int) -> None:
    """Refuse, in one line, a param that needs two labels when the data has more."""
    if labels <= 2:
        return
    if params.decision_threshold != 0.5:
        raise ParamsError(
            f"decision_threshold is for two labels (the positive one at or above it) and the data "
            f"has {labels}, where the likeliest label is predicted: set decision_threshold: 0.5"
        )
    if params.positive_label:
        raise ParamsError(
            f"positive_label is for two labels and the data has {labels}: set positive_label: '' "
            "(more labels are scored one-vs-rest)"
        )


def params_from_mapping(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a whole params mapping (unknown keys, types, allowed values) into Params."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source} must be a mapping of key: value, got {type(raw).__name__}")
    fields = typing.get_type_hints(Params)
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(fields)}"
            raise ParamsError(f"unknown key {key!r} in {source}: {hint}")
    values = {}
    for name, expected_type in fields.items():
        if name not in raw:
            continue
        value = _check_type(name, raw[name], expected_type)
        _check_value(name, value)
        values[name] = value
    params = Params(**values)
    _check_combination(params)
    return params


def read_yaml(path: str | Path, fix: str, error: type[PipelineError] = PipelineError) -> Any:
    """A YAML file's contents; a missing or malformed file is one line naming `fix`."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path} not found: {fix}") from None
    except yaml.YAMLError as problem:
        raise error(f"{path} is not valid YAML ({problem.__class__.__name__})") from None


def read_params_mapping(path: str | Path = "params.yaml") -> dict[str, Any]:
    """params.yaml as its plain mapping (what overrides apply to), checked whole first."""
    raw = read_yaml(path, "run from the project root", ParamsError) or {}
    params_from_mapping(raw, source=str(path))
    return raw


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file; every stage calls this before heavy work."""
    raw = read_yaml(path, "run from the project root", ParamsError)
    return params_from_mapping(raw or {}, source=str(path))


def stage_params(stage: str, path: str | Path = "params.yaml") -> dict[str, Any]:
    """The validated params one stage declares in dvc.yaml, as keyword arguments."""
    params = load_params(path)
    return {name: getattr(params, name) for name in STAGE_PARAMS[stage]}
