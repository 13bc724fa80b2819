"""A user's own labelled text: every format, given and carved splits, labels, and bad data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sentiment.classifier.data.files import read_table
from sentiment.classifier.data.reviews import DataError
from sentiment.classifier.data.sources import get_dataset, read_files
from sentiment.params import Params, ParamsError, check_for_labels
from tests.conftest import PROJECT_ROOT, planted_comparison, write_params

# Three labels, twelve reviews each: enough for stratified test and validation carves.
ROWS = [
    {"review": f"{word} product number {index}", "grade": label}
    for label, word in (("bad", "awful"), ("good", "great"), ("okay", "fine"))
    for index in range(12)
]


def write(frame: pd.DataFrame, path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif kind == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)


def dataset(tmp_path, name: str, **overrides):
    settings = {
        "dataset": name,
        "text_column": "review",
        "label_column": "grade",
        "labels": "",
        "positive_label": "",
        "test_split": 0.25,
        "seed": 7,
    }
    settings |= overrides
    return read_files(
        settings["dataset"],
        text_column=settings["text_column"],
        label_column=settings["label_column"],
        listed=[label for label in settings["labels"].split(",") if label],
        test_split=settings["test_split"],
        seed=settings["seed"],
        root=tmp_path,
    )


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "parquet"])
def test_every_format_gives_the_same_reviews_labels_and_fingerprints(tmp_path, kind):
    write(pd.DataFrame(ROWS), tmp_path / f"reviews.{kind}", kind)
    write(pd.DataFrame(ROWS), tmp_path / "reference.csv", "csv")
    found, reference = dataset(tmp_path, f"reviews.{kind}"), dataset(tmp_path, "reference.csv")
    assert found.labels == ["bad", "good", "okay"]
    assert found.fingerprints == reference.fingerprints
    assert found.files == {"train": f"reviews.{kind}"}


def test_a_single_file_gets_a_seeded_test_split_stratified_by_label(tmp_path):
    write(pd.DataFrame(ROWS), tmp_path / "reviews.csv", "csv")
    found = dataset(tmp_path, "reviews.csv")
    test_labels = [label for _, label in found.reviews["test"]]
    assert sorted(test_labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # a quarter of each label's 12
    assert len(found.reviews["train"]) == 27
    assert dataset(tmp_path, "reviews.csv").fingerprints == found.fingerprints
    assert dataset(tmp_path, "reviews.csv", seed=8).fingerprints != found.fingerprints


def test_a_folder_gives_its_splits_as_they_are(tmp_path):
    frame = pd.DataFrame(ROWS)
    write(frame.iloc[::2], tmp_path / "data/train.jsonl", "jsonl")
    write(frame.iloc[1::4], tmp_path / "data/validation.parquet", "parquet")
    write(frame.iloc[3::4], tmp_path / "data/test.csv", "csv")
    found = dataset(tmp_path, "data")
    assert {split: len(reviews) for split, reviews in found.reviews.items()} == {
        "train": 18,
        "validation": 9,
        "test": 9,
    }
    assert found.files["validation"] == "data/validation.parquet"


def test_labels_are_sorted_numbers_by_value_unless_the_labels_param_orders_them(tmp_path):
    frame = pd.DataFrame({"review": [f"r {i}" for i in range(40)], "grade": [10, 9, 2, 1] * 10})
    write(frame, tmp_path / "numbers.csv", "csv")
    assert dataset(tmp_path, "numbers.csv").labels == ["1", "2", "9", "10"]
    ordered = dataset(tmp_path, "numbers.csv", labels="10,9,2,1")
    assert ordered.labels == ["10", "9", "2", "1"]
    index = {text: label for text, label in ordered.reviews["train"] + ordered.reviews["test"]}
    assert ordered.labels[index["r 0"]] == "10" and ordered.labels[index["r 3"]] == "1"


def test_positive_label_puts_the_chosen_label_second(tmp_path):
    frame = pd.DataFrame({"review": [f"r {i}" for i in range(20)], "grade": ["spam", "ham"] * 10})
    write(frame, tmp_path / "mail.csv", "csv")
    common = {
        "dataset": "mail.csv",
        "text_column": "review",
        "label_column": "grade",
        "labels": "",
        "test_split": 0.2,
        "synthetic_reviews": 20,
        "synthetic_labels": 2,
        "seed": 1,
    }
    assert get_dataset(**common, positive_label="", root=tmp_path).labels == ["ham", "spam"]
    flipped = get_dataset(**common, positive_label="ham", root=tmp_path)
    assert flipped.labels == ["spam", "ham"]
    texts = dict(flipped.reviews["train"] + flipped.reviews["test"])
    assert flipped.labels[texts["r 1"]] == "ham"


def test_synthetic_reviews_can_be_graded_with_more_labels():
    found = get_dataset(
        dataset="synthetic",
        text_column="text",
        label_column="label",
        labels="",
        positive_label="",
        test_split=0.2,
        synthetic_reviews=60,
        synthetic_labels=3,
        seed=42,
    )
    assert found.labels == ["grade_1", "grade_2", "grade_3"]
    assert sorted({label for _, label in found.reviews["train"]}) == [0, 1, 2]


BAD_CSV = {
    "blank text": ("review,grade\nfine,good\n ,bad\ngood,good\n,bad\n", "2 blank texts"),
    "blank label": ("review,grade\nfine,good\nmeh,\n", "1 blank labels in column 'grade'"),
    "one label": ("review,grade\na,good\nb,good\nc,good\n", "has the label 'good'"),
    "missing column": ("text,label\na,good\n", "has no column 'review' (its columns: text, label)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_data_is_named_in_one_line_with_the_fix(tmp_path, case):
    content, message = BAD_CSV[case]
    (tmp_path / "bad.csv").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        dataset(tmp_path, "bad.csv")
    assert "\n" not in str(error.value)


def test_the_rows_of_blank_texts_are_named(tmp_path):
    (tmp_path / "bad.csv").write_text("review,grade\nfine,good\n ,bad\ngood,good\n,bad\n")
    with pytest.raises(DataError, match=r"data rows 2, 4, counted from 1"):
        read_table(tmp_path / "bad.csv", text_column="review", label_column="grade")


def test_text_that_is_not_utf8_names_its_line_and_how_to_convert(tmp_path):
    (tmp_path / "latin.csv").write_bytes(b"review,grade\nfine,good\ncaf\xe9,bad\n")
    with pytest.raises(DataError, match=r"latin.csv is not UTF-8 text \(line 3, .*iconv -f latin1"):
        dataset(tmp_path, "latin.csv")


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"reviews.xlsx": "x"}, r"unknown format .xlsx: give a .csv, .tsv"),
        ({"data/test.csv": "review,grade\na,b\n"}, r"holds no train file"),
        ({"data/train.csv": "review,grade\n", "data/train.tsv": ""}, r"keep one train file"),
    ],
)
def test_a_path_that_is_not_a_dataset_is_refused(tmp_path, layout, message):
    for name, content in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    target = "reviews.xlsx" if "reviews.xlsx" in layout else "data"
    with pytest.raises(DataError, match=message):
        dataset(tmp_path, target)


def test_a_missing_path_says_how_to_give_data(tmp_path):
    with pytest.raises(DataError, match=r"dataset nowhere.csv does not exist: give a data file"):
        dataset(tmp_path, "nowhere.csv")


def test_a_label_too_rare_for_the_stratified_split_is_named(tmp_path):
    rows = "review,grade\n" + "".join(f"r{i},common\n" for i in range(20)) + "lonely,rare\n"
    (tmp_path / "rare.csv").write_text(rows)
    with pytest.raises(
        DataError, match=r"label 'rare' has 1 review\(s\) in .*stratified test_split"
    ):
        dataset(tmp_path, "rare.csv")


def test_a_test_file_with_labels_training_never_has_is_refused(tmp_path):
    write(pd.DataFrame(ROWS[:24]), tmp_path / "data/train.csv", "csv")  # bad and good only
    write(pd.DataFrame(ROWS[20:]), tmp_path / "data/test.csv", "csv")  # okay too
    with pytest.raises(
        DataError, match=r"test.csv has labels the training reviews never have: 'okay' \(12\)"
    ):
        dataset(tmp_path, "data")


def test_the_labels_param_must_match_the_data(tmp_path):
    write(pd.DataFrame(ROWS), tmp_path / "reviews.csv", "csv")
    with pytest.raises(DataError, match=r"has labels the labels param does not list: okay"):
        dataset(tmp_path, "reviews.csv", labels="bad,good")
    with pytest.raises(DataError, match=r"labels lists great, which no review"):
        dataset(tmp_path, "reviews.csv", labels="bad,good,okay,great")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset": "/abs/reviews.csv"}, "nor a path inside the repository"),
        ({"dataset": "../reviews.csv"}, "nor a path inside the repository"),
        ({"dataset": "data/r.csv", "text_column": "x", "label_column": "x"}, "name two columns"),
        ({"labels": "a,a"}, "two or more different labels"),
        ({"labels": "a,b,c", "positive_label": "b"}, "positive_label is for two labels"),
        ({"labels": "a,b", "positive_label": "c"}, "is not one of labels"),
    ],
)
def test_params_that_cannot_name_a_dataset_or_its_labels_are_refused(changes, message):
    with pytest.raises(ParamsError, match=message):
        Params().replace(**changes)


def test_a_two_label_param_is_refused_for_more_labels_in_one_line():
    check_for_labels(Params().replace(decision_threshold=0.7), 2)  # fine with two
    with pytest.raises(ParamsError, match=r"decision_threshold is for two labels .* has 5"):
        check_for_labels(Params().replace(decision_threshold=0.7), 5)


def test_the_download_stage_fails_in_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/bad.csv").write_text("review,grade\nfine,good\n")
    params = write_params(
        tmp_path / "params.yaml", dataset="data/bad.csv", text_column="review", label_column="grade"
    )
    result = subprocess.run(
        [sys.executable, "-m", "stages.download", "--output", "out", "--params", params],
        cwd=tmp_path,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: every review of data/bad.csv has the label 'good': a classifier needs two labels "
        "or more\n"
    )
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_the_download_stage_writes_the_labels_and_files_in_its_manifest(tmp_path):
    write(pd.DataFrame(ROWS), tmp_path / "data/reviews.tsv", "tsv")
    params = write_params(
        tmp_path / "params.yaml",
        dataset="data/reviews.tsv",
        text_column="review",
        label_column="grade",
        test_split=0.25,
    )
    subprocess.run(
        [sys.executable, "-m", "stages.download", "--output", "out", "--params", params],
        cwd=tmp_path,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": ""},
        check=True,
        capture_output=True,
    )
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["labels"] == ["bad", "good", "okay"]
    assert manifest["files"] == {"train": "data/reviews.tsv"}
    assert manifest["splits"]["test"]["labels"] == {"bad": 3, "good": 3, "okay": 3}
    assert np.sum([s["reviews"] for s in manifest["splits"].values()]) == 36


GRADES = ("low", "middling", "high")


def graded_csv(path, reviews_per_split: int = 600, relabel: int = 0) -> None:
    """Three-grade synthetic reviews as a user's CSV; `relabel` rows get the next grade."""
    from sentiment.classifier.data.synthetic import make_synthetic_graded

    reviews = make_synthetic_graded(reviews_per_split, 3)["train"]
    rows = [
        {"review": text, "grade": GRADES[(label + (index < relabel)) % 3]}
        for index, (text, label) in enumerate(reviews)
    ]
    write(pd.DataFrame(rows), path, "csv")


@pytest.mark.slow
def test_own_multi_label_data_through_dvc_exp_run_and_a_data_change_reruns_from_download(
    tmp_path,
):
    from tests.conftest import dvc, make_project

    repo, run = make_project(tmp_path / "project")
    graded_csv(repo / "data/reviews.csv")
    dvc(run, "add", "-q", "data/reviews.csv")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "own data")
    columns = ["-S", "text_column=review", "-S", "label_column=grade"]
    output = dvc(run, "exp", "run", "-S", "dataset=data/reviews.csv", *columns)
    assert "Running stage 'download'" in output and "Running stage 'export'" in output
    metrics = json.loads((repo / "metrics/test.json").read_text())
    assert metrics["accuracy"] > 0.6, metrics["accuracy"]  # three grades: chance is a third
    assert set(metrics["confusion_matrix"]) == set(GRADES)
    card = json.loads((repo / "models/export/model_card.json").read_text())
    assert card["labels"] == ["high", "low", "middling"]  # sorted
    assert card["data"]["files"] == {"train": "data/reviews.csv"}
    predicted = run(
        sys.executable,
        "-m",
        "sentiment",
        "predict",
        "--model",
        "models/export",
        "the film was superb brilliant and masterful",
    )
    assert json.loads(predicted.splitlines()[-1])["label"] == "high"
    run("git", "add", "-A")
    run("git", "commit", "-qm", "own data run")
    run("git", "branch", "base")

    assert "didn't change" in dvc(run, "exp", "run")  # the same data: nothing re-runs
    graded_csv(repo / "data/reviews.csv", relabel=30)  # the user relabels 30 reviews
    dvc(run, "add", "-q", "data/reviews.csv")
    assert "data/reviews.csv" in dvc(run, "status", "download")
    rerun = dvc(run, "exp", "run")
    assert "Running stage 'download'" in rerun
    run("git", "checkout", "-qb", "relabelled")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "30 reviews relabelled")

    compared = subprocess.run(
        [sys.executable, "-m", "sentiment", "compare", "base"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    text = " ".join(compared.stdout.split())
    assert "## Data changed against base" in text, compared.stdout + compared.stderr
    assert "Over all splits: 0 reviews added, 0 removed, 30 relabelled" in text
    assert "| train | " in text and "labels before" in text
    assert "No noise record for base's configuration" in text  # measured for IMDB only


@pytest.fixture(scope="module")
def graded_splits():
    """Three-grade synthetic reviews, preprocessed as the pipeline does."""
    from sentiment.classifier.data.preprocessing import prepare_splits
    from sentiment.classifier.data.synthetic import grade_names, make_synthetic_graded

    reviews = make_synthetic_graded(300, 3)
    splits, vocabulary = prepare_splits(
        reviews,
        vocab_size=120,
        max_length=60,
        padding="pre",
        truncating="pre",
        validation_split=0.2,
        seed=3,
        label_names=grade_names(3),
    )
    return splits, vocabulary


def _train(graded_splits, **overrides):
    from sentiment.classifier.training.fit import train_model
    from tests.conftest import small_configs

    splits, vocabulary = graded_splits
    model_config, training_config = small_configs(
        len(vocabulary) + 2, **({"epochs": 4, "max_length": 60} | overrides)
    )
    import dataclasses

    model_config = dataclasses.replace(model_config, classes=3)
    model, history, _ = train_model(
        train=splits["train"],
        validation=splits["validation"],
        model_config=model_config,
        training_config=training_config,
        verbose=0,
    )
    return model, history


@pytest.mark.parametrize(
    "overrides",
    # the adversarial terms slow the start down: 0.30 after 4 epochs, 0.95 after 8 (measured)
    [{}, {"merge_mode": "none"}, {"adversarial": 2.0, "virtual_adversarial": 1.0, "epochs": 8}],
    ids=["softmax head", "two voting heads", "adversarial terms"],
)
def test_a_three_label_model_outputs_a_distribution_and_learns(graded_splits, overrides):
    from sentiment.classifier.model.inference import predict_probabilities, validation_accuracy

    model, history = _train(graded_splits, **overrides)
    splits, _ = graded_splits
    probabilities = predict_probabilities(model, splits["test"].token_ids)
    assert probabilities.shape == (len(splits["test"]), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert validation_accuracy(model, splits["validation"]) > 0.5  # chance is a third
    assert "accuracy" in history and "val_accuracy" in history


def test_an_ensemble_of_three_label_models_averages_their_distributions(graded_splits):
    from sentiment.classifier.model.inference import predict_probabilities

    model, _ = _train(graded_splits, ensemble=2, epochs=1)
    splits, _ = graded_splits
    members = [layer for layer in model.layers if hasattr(layer, "layers")]
    ids = splits["test"].token_ids[:20]
    mean = np.mean([member.predict_on_batch(ids) for member in members], axis=0)
    np.testing.assert_allclose(predict_probabilities(model, ids), mean, atol=1e-6)


def test_three_label_metrics_report_and_plots(graded_splits):
    from sentiment.classifier.evaluation import metrics as evaluation
    from sentiment.classifier.evaluation.report import markdown_report

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    probabilities = rng.dirichlet([1, 1, 1], size=60)
    probabilities[np.arange(60), labels] += 1.0  # mostly right
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    names = ["low", "middling", "high"]
    metrics = evaluation.score_predictions(
        labels, probabilities, decision_threshold=0.5, label_names=names
    )
    assert set(metrics["report"]) == {"low", "middling", "high", "macro_avg"}
    assert sum(metrics["confusion_matrix"]["low"].values()) == 20
    assert 0.5 < metrics["roc_auc"] <= 1.0 and metrics["log_loss"] > 0
    rows = evaluation.confusion_rows(labels, probabilities.argmax(axis=1), names)
    assert rows.splitlines()[0] == "actual,predicted" and len(rows.splitlines()) == 61
    assert evaluation.roc_points(labels, probabilities)[-1]["tpr"] == 1.0
    mistakes = evaluation.confident_mistakes(
        ["text"] * 60, labels, probabilities, count=3, decision_threshold=0.5, label_names=names
    )
    assert all(m["true_label"] != m["predicted_label"] for m in mistakes)
    baseline = {"accuracy": 0.5, "f1": 0.5, "roc_auc": 0.6}
    comparison = planted_comparison(labels, probabilities, names)
    report = markdown_report(
        metrics,
        baseline,
        mistakes,
        comparison=comparison,
        dataset="`data/r.csv`",
        label_names=names,
    )
    assert "| model | validation accuracy | test accuracy | F1 (macro) | ROC AUC |" in report
    blend = comparison.models["blend"].headline(names)
    assert f" {blend['accuracy']:.4f} | {blend['f1']:.4f} | " in report
    assert "| | low | middling | high |" in report
    assert "60 `data/r.csv` test reviews" in report


def test_the_baseline_fits_three_labels_one_vs_rest():
    from sentiment.classifier.data.synthetic import make_synthetic_graded
    from sentiment.classifier.evaluation.baseline import fit_baseline_on_texts

    fitted = fit_baseline_on_texts(make_synthetic_graded(200, 3), validation_split=0.2, seed=1)
    metrics = fitted.metrics
    assert metrics["accuracy"] > 0.5  # chance is a third
    assert 0.5 < metrics["roc_auc"] <= 1.0


def test_a_three_label_export_serves_each_label_and_the_name(graded_splits, tmp_path):
    import tensorflow as tf

    from sentiment.classifier.model.fast_layers import with_stock_layers
    from sentiment.classifier.serving import export

    model, _ = _train(graded_splits, epochs=1)
    _, vocabulary = graded_splits
    end_to_end = export.end_to_end_model(
        with_stock_layers(model), vocabulary, max_length=60, padding="post", truncating="pre"
    )
    names = ["low", "middling", "high"]
    export.write_saved_model(
        end_to_end, tmp_path / "saved_model", decision_threshold=0.5, label_names=names
    )
    serve = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    out = serve(reviews=tf.constant(["superb brilliant", "dreadful abysmal"]))
    assert out["probabilities"].shape == (2, 3)
    assert {label.decode() for label in out["label"].numpy()} <= set(names)


@pytest.mark.slow
def test_the_data_benchmark_measures_each_data_stage_at_each_size():
    result = subprocess.run(
        [sys.executable, "-m", "sentiment", "benchmark", "data", "--rows", "300", "600"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[-1])
    assert [(run["rows"], run["stage"]) for run in record["runs"]] == [
        (300, "download"),
        (300, "unlabelled"),
        (300, "preprocess"),
        (600, "download"),
        (600, "unlabelled"),
        (600, "preprocess"),
    ]
    assert all(run["wall_s"] > 0 and run["peak_rss_mb"] > 0 for run in record["runs"])
    assert record["growth"]["download"]["rows"] == 2.0
    assert "download: rows x2, wall time x" in result.stdout


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    (tmp_path / "excel.csv").write_bytes("\ufeffreview,grade\na,x\nb,y\n".encode())
    texts, labels = read_table(tmp_path / "excel.csv", text_column="review", label_column="grade")
    assert texts == ["a", "b"] and labels == ["x", "y"]
