import csv
import io
import json
import os

import numpy as np
import pytest

from sentiment.classifier.data.preprocessing import number_words
from sentiment.classifier.data.reviews import VALIDATION
from sentiment.classifier.data.synthetic import make_synthetic
from sentiment.classifier.evaluation.baseline import fit_baseline_on_texts
from sentiment.classifier.evaluation.metrics import (
    confident_mistakes,
    confusion_rows,
    precision_recall_points,
    roc_points,
    score_predictions,
)
from sentiment.classifier.evaluation.report import markdown_report
from sentiment.errors import PipelineError
from tests.conftest import die_as_killed, planted_comparison

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 2, 3000)
# informative but imperfect scores
PROBABILITIES = np.clip(0.5 + 0.35 * (LABELS - 0.5) + RNG.normal(0, 0.2, 3000), 0, 1)


def test_roc_points_are_a_thinned_monotone_curve_from_0_0_to_1_1():
    rows = json.loads(json.dumps(roc_points(LABELS, PROBABILITIES, max_points=100)))
    assert len(rows) <= 100 and set(rows[0]) == {"fpr", "tpr", "threshold"}
    assert (rows[0]["fpr"], rows[0]["tpr"]) == (0.0, 0.0)
    assert (rows[-1]["fpr"], rows[-1]["tpr"]) == (1.0, 1.0)
    for key in ("fpr", "tpr"):
        values = [row[key] for row in rows]
        assert values == sorted(values) and min(values) >= 0 and max(values) <= 1


def test_precision_recall_points_hold_recall_and_precision_in_range():
    rows = precision_recall_points(LABELS, PROBABILITIES, max_points=50)
    assert 2 <= len(rows) <= 50 and set(rows[0]) == {"recall", "precision", "threshold"}
    assert all(0 <= row["recall"] <= 1 and 0 <= row["precision"] <= 1 for row in rows)
    assert rows[0]["recall"] == 1.0


def test_confusion_rows_parse_as_one_csv_row_per_review():
    predicted = (PROBABILITIES >= 0.5).astype(int)
    rows = list(csv.DictReader(io.StringIO(confusion_rows(LABELS, predicted))))
    assert len(rows) == len(LABELS)
    assert set(rows[0]) == {"actual", "predicted"}
    wrong_positives = sum(r["actual"] == "negative" and r["predicted"] == "positive" for r in rows)
    metrics = score_predictions(LABELS, PROBABILITIES, decision_threshold=0.5)
    assert wrong_positives == metrics["confusion_matrix"]["false_positive"]


def test_confident_mistakes_are_wrong_and_surest_first():
    texts = [f"review {i}" for i in range(len(LABELS))]
    mistakes = confident_mistakes(texts, LABELS, PROBABILITIES, count=10, decision_threshold=0.5)
    assert len(mistakes) == 10
    confidence = [abs(m["probability_positive"] - 0.5) for m in mistakes]
    assert confidence == sorted(confidence, reverse=True)
    for mistake in mistakes:
        index = int(mistake["excerpt"].split()[1])
        assert (PROBABILITIES[index] >= 0.5) != (LABELS[index] == 1)


def test_baseline_beats_chance_on_synthetic_reviews():
    # Negation and late turns are built to defeat a bag of words (the BiLSTM gets >90% here),
    # so the baseline sits well above chance but far from perfect: 1,000 test reviews make
    # 0.6 about six standard errors above 0.5.
    metrics = fit_baseline_on_texts(make_synthetic(1000), validation_split=0.2, seed=1).metrics
    assert metrics["accuracy"] > 0.6 and metrics["roc_auc"] > 0.65


def test_the_baselines_ngrams_are_scikit_learns_binary_counts_in_another_column_order():
    from sklearn.feature_extraction.text import CountVectorizer

    from sentiment.classifier.data.text import tokenize
    from sentiment.classifier.model.ngrams import MIN_REVIEWS, NgramVocabulary

    reviews = make_synthetic(300)
    fit = [text for text, _ in reviews["train"]]
    other = [text for text, _ in reviews["test"]] + ["words never seen", ""]
    # the reviews as preprocess numbers them: the fit ones as train, the others as test
    words, spelling = number_words(
        {
            "train": [(text, 0) for text in fit],
            VALIDATION: [(fit[0], 0)],
            "test": [(text, 0) for text in other],
        },
        validation_split=0.2,
        seed=0,
    )
    ours = NgramVocabulary(3)
    fit_features = ours.fit_transform(words["train"].reviews(), len(spelling))
    theirs = CountVectorizer(
        tokenizer=tokenize,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 3),
        binary=True,
        min_df=MIN_REVIEWS,
    ).fit(fit)

    def spelled(gram: int) -> str:
        digits = []
        while gram:
            gram, digit = divmod(gram, ours.base)
            digits.append(spelling[digit - 1])
        return " ".join(reversed(digits))

    names = [spelled(int(gram)) for gram in ours.vocabulary]
    assert sorted(names) == sorted(theirs.get_feature_names_out())
    order = [theirs.vocabulary_[name] for name in names]
    other_features = ours.transform(words["test"].reviews())
    for texts, features in ((fit, fit_features), (other, other_features)):
        difference = theirs.transform(texts)[:, order] - features
        assert difference.nnz == 0
    assert list(ours.lengths()) == [name.count(" ") + 1 for name in names]
    assert fit_features.has_sorted_indices and other_features.has_sorted_indices


def test_the_baseline_chooses_on_validation_and_never_reads_the_test_labels():
    from sentiment.classifier.evaluation.baseline import LONGEST_NGRAMS, REGULARISATION

    reviews = make_synthetic(400)
    chosen = fit_baseline_on_texts(reviews, validation_split=0.2, seed=1).metrics
    assert chosen["longest_ngram"] in LONGEST_NGRAMS
    assert chosen["regularisation"] in REGULARISATION
    assert chosen["features"] > 0 and 0.5 < chosen["validation_accuracy"] <= 1.0
    flipped = dict(reviews, test=[(text, 1 - label) for text, label in reviews["test"]])
    again = fit_baseline_on_texts(flipped, validation_split=0.2, seed=1).metrics
    same_choice = ("longest_ngram", "regularisation", "features", "validation_accuracy")
    assert {key: again[key] for key in same_choice} == {key: chosen[key] for key in same_choice}
    assert again["accuracy"] == pytest.approx(1 - chosen["accuracy"])  # the same predictions
    assert fit_baseline_on_texts(reviews, validation_split=0.2, seed=1).metrics == chosen  # exact


def test_the_baselines_fits_side_by_side_are_the_serial_fits_bit_for_bit(monkeypatch):
    from scipy.sparse import diags

    from sentiment import forked
    from sentiment.classifier.evaluation import baseline

    words, spelling = number_words(make_synthetic(300), validation_split=0.2, seed=0)
    labels = words["train"].labels.astype(np.int64)
    ngrams = baseline.NgramVocabulary(3)
    features = ngrams.fit_transform(words["train"].reviews(), len(spelling))
    inputs = {}
    for longest in baseline.LONGEST_NGRAMS:
        columns = features[:, np.flatnonzero(ngrams.lengths() <= longest)]
        ratios = baseline.naive_bayes_ratios(columns, labels, [1])
        inputs[longest] = (ratios, [columns @ diags(ratio) for ratio in ratios])

    def fitted(processes: int) -> dict:
        monkeypatch.setattr(forked, "processes_for", lambda tasks: processes)
        return baseline.fit_candidates(inputs, labels, classes=2, seed=3)

    serial, side_by_side = fitted(1), fitted(2)
    assert set(side_by_side) == {
        (longest, c) for longest in baseline.LONGEST_NGRAMS for c in baseline.REGULARISATION
    }
    for key, model in serial.items():
        for theirs, ours in zip(side_by_side[key].models, model.models, strict=True):
            assert np.array_equal(theirs.coef_, ours.coef_)
            assert np.array_equal(theirs.intercept_, ours.intercept_)
    assert not forked.SHARED  # nothing left behind in the parent

    monkeypatch.setattr(baseline, "_fit_one", die_as_killed)
    candidates = len(baseline.LONGEST_NGRAMS) * len(baseline.REGULARISATION)
    died = rf"a process fitting the baseline's {candidates} candidates on [\d,]+ reviews died"
    with pytest.raises(PipelineError, match=died):
        fitted(2)
    assert not forked.SHARED


def test_the_baselines_ngrams_counted_side_by_side_are_the_serial_ones(monkeypatch):
    from sentiment import forked
    from sentiment.classifier.model import ngrams as baseline

    words, spelling = number_words(make_synthetic(600), validation_split=0.2, seed=0)
    monkeypatch.setattr(baseline, "LOOKUP_ROWS", 37)  # many blocks, the last one short

    def counted(processes: int):
        monkeypatch.setattr(forked, "processes_for", lambda tasks: processes)
        ngrams = baseline.NgramVocabulary(3)
        fit = ngrams.fit_transform(words["train"].reviews(), len(spelling))
        return ngrams.vocabulary, fit, ngrams.transform(words["test"].reviews())

    serial, side_by_side = counted(1), counted(2)
    assert np.array_equal(serial[0], side_by_side[0]) and len(serial[0]) > 1000
    for ours, theirs in zip(serial[1:], side_by_side[1:], strict=True):
        assert ours.shape == theirs.shape and (ours != theirs).nnz == 0
        assert np.array_equal(ours.indptr, theirs.indptr)
    assert not forked.SHARED
    empty = baseline.NgramVocabulary(2)
    assert empty.fit_transform([], 0).shape == (0, 0)

    monkeypatch.setattr(baseline, "_count_part", die_as_killed)
    died = r"a process counting the baseline's n-grams of [\d,]+ reviews died"
    with pytest.raises(PipelineError, match=died):
        counted(2)
    assert not forked.SHARED


def test_the_baseline_fits_on_one_cpu_in_its_own_process(monkeypatch):
    from sentiment import forked

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert forked.processes_for(6) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert forked.processes_for(6) == forked.PROCESSES
    assert forked.processes_for(1) == 1


def test_the_test_scores_round_trip_and_a_wrong_file_is_named_in_one_line(tmp_path):
    from sentiment.classifier.model.scores import load_scores, save_scores

    two, three = tmp_path / "two.npy", tmp_path / "three.npy"
    scores = PROBABILITIES.astype(np.float32)  # as the model gives them
    save_scores(two, scores)
    save_scores(three, np.full((len(LABELS), 3), 1 / 3, dtype=np.float32))
    assert np.array_equal(load_scores(two, reviews=len(LABELS), labels=2), scores)
    assert load_scores(three, reviews=len(LABELS), labels=3).dtype == np.float32
    first = two.read_bytes()
    save_scores(two, scores)
    assert two.read_bytes() == first  # the same values, the same bytes
    for path, reviews, labels in ((two, len(LABELS) + 1, 2), (two, len(LABELS), 3), (three, 8, 2)):
        with pytest.raises(PipelineError, match=r"shape .* run `dvc repro train`") as caught:
            load_scores(path, reviews=reviews, labels=labels)
        assert "\n" not in str(caught.value)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(PipelineError, match=r"junk.npy is not the train stage's test scores"):
        load_scores(tmp_path / "junk.npy", reviews=len(LABELS), labels=2)
    with pytest.raises(PipelineError, match=r"missing.npy is missing: .*`dvc repro train`"):
        load_scores(tmp_path / "missing.npy", reviews=len(LABELS), labels=2)
    np.savez(tmp_path / "archive.npy", scores)  # np.savez keeps the name it is given
    with pytest.raises(PipelineError, match=r"archive.npy.npz is not .* \(an archive\)"):
        load_scores(tmp_path / "archive.npy.npz", reviews=len(LABELS), labels=2)
    assert not list(tmp_path.glob(".*partial*"))  # written through a staging file, then moved


@pytest.mark.parametrize("ship", ["network", "baseline", "blend"])
def test_report_puts_the_three_models_side_by_side_and_says_which_ships(ship):
    metrics = score_predictions(LABELS, PROBABILITIES, decision_threshold=0.5)
    baseline = {"accuracy": 0.9, "f1": 0.9, "roc_auc": 0.95, "features": 10}
    mistakes = confident_mistakes(
        ["a | b"] * len(LABELS), LABELS, PROBABILITIES, count=3, decision_threshold=0.5
    )
    comparison = planted_comparison(LABELS, PROBABILITIES, ["negative", "positive"], ship)
    report = markdown_report(metrics, baseline, mistakes, comparison=comparison)
    header = "| model | validation accuracy | test accuracy | F1 (positive) | ROC AUC | log loss |"
    assert header in report
    rows = {
        line.split(" | ")[0].strip("| *"): line
        for line in report.splitlines()
        if line.startswith("| ") and "accuracy" not in line and line.count("|") == 7
    }
    weight = comparison.choice.weight
    blend_row = f"blend (network weight {weight:g})"
    names = {"network": "network", "baseline": "NBSVM baseline", "blend": blend_row}
    shipped = f"{names[ship]}, ships"
    assert set(rows) == {shipped} | {names[other] for other in names if other != ship}
    assert rows[shipped].startswith(f"| **{shipped}** |")
    network = rows["network, ships" if ship == "network" else "network"]
    assert f" {metrics['accuracy']:.4f} | " in network  # the network's own test metrics
    assert f"What ships (`ship: {ship}`)" in report
    assert "chosen on the validation split's accuracy, never the test split's" in report
    assert "| macro avg |" in report and "most confidently wrong" in report
    assert report.count("a \\| b") == 3  # table cells escape the pipe
