"""The pipeline as users drive it: real DVC commands in a temporary git repository."""

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sentiment.classifier.model.network import architecture
from sentiment.console import STAGE_TIMES_ENV
from sentiment.measurement.pipeline_benchmark import stage_table, times_by_stage
from sentiment.params import STAGE_PARAMS, Params
from tests.conftest import PROJECT_ROOT, SMALL_PARAMS, dvc, make_project, project_env
from tests.import_graph import executed_files, import_closure, relative

DVC_YAML = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
STAGES = (
    "download",
    "unlabelled",
    "preprocess",
    "word_vectors",
    "pretrain",
    "train",
    "baseline",
    "evaluate",
    "figures",
    "export",
)
NETWORK_STAGES = ("train", "evaluate", "figures", "export")


def test_dvc_yaml_has_the_stages_in_order():
    assert tuple(DVC_YAML["stages"]) == STAGES


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_declares_exactly_the_params_it_reads(stage):
    assert sorted(DVC_YAML["stages"][stage].get("params", [])) == sorted(STAGE_PARAMS[stage])


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_lists_exactly_the_code_it_runs_as_dependencies(stage):
    # `python -m stages.<stage>` runs the script, every module it imports (functions' lazy imports
    # included) and every package __init__.py on the way: editing any of them must re-run it.
    script = PROJECT_ROOT / f"stages/{stage}.py"
    runs = relative(import_closure(script) | executed_files(f"stages.{stage}"))
    deps = set(DVC_YAML["stages"][stage]["deps"])
    code_deps = {dep for dep in deps if dep.startswith(("sentiment/", "stages/"))}
    assert f"stages/{stage}.py" in deps
    assert runs <= deps, f"missing from {stage}'s deps: {sorted(runs - deps)}"
    extra = sorted(code_deps - runs)
    assert not extra, f"{stage}'s deps name code it does not run: {extra}"


# Only train and export run the model; download reaches for tensorflow-datasets only where IMDB
# comes from it. Every other stage starts without TensorFlow's seconds of start-up.
MODEL_FREE_STAGES = (
    "preprocess",
    "word_vectors",
    "baseline",
    "evaluate",
    "figures",
)


@pytest.mark.parametrize("stage", MODEL_FREE_STAGES)
def test_the_stages_that_run_no_model_never_import_tensorflow(stage):
    files = import_closure(PROJECT_ROOT / f"stages/{stage}.py") | executed_files(f"stages.{stage}")
    imported = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert not imported & {"tensorflow", "keras", "tensorflow_datasets"}, stage


def test_the_dependency_walk_follows_packages_and_fails_on_a_missing_module(tmp_path):
    from tests import import_graph

    runs = relative(import_closure(PROJECT_ROOT / "stages/download.py"))
    assert {"sentiment/__init__.py", "sentiment/classifier/data/__init__.py"} <= runs
    broken = tmp_path / "broken.py"
    broken.write_text("from sentiment.classifier.data import no_such_name\nimport sentiment.nope\n")
    with pytest.raises(AssertionError, match=r"broken.py:2: sentiment.nope is not a file"):
        import_graph.imported_modules(broken)


@pytest.fixture
def project(tmp_path):
    """A copy of the project in a fresh git + DVC repository, configured for small data."""
    return make_project(tmp_path / "project")


@pytest.mark.slow
def test_repro_then_merge_mode_experiment_then_metrics_diff(project):
    repo, run = project
    # As a user runs it: no TF_CPP_MIN_LOG_LEVEL of their own.
    env = {k: v for k, v in project_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env[STAGE_TIMES_ENV] = str(repo.parent / "stage-times.jsonl")  # the benchmark's stage table
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for stage in STAGES:
        assert f"Running stage '{stage}'" in output
    # The stages print no TensorFlow start-up chatter (absl's I/W/E lines, the CUDA stub).
    stages = times_by_stage(repo.parent / "stage-times.jsonl")
    assert set(stages) == set(STAGES)  # each stage timed itself
    for times in stages.values():
        assert 0 < times["start_up_s"] < times["wall_s"] and times["cpu_s"] > 0
        assert times["peak_rss_mb"] > 10
    assert stages["train"]["peak_rss_mb"] > stages["download"]["peak_rss_mb"]  # TensorFlow's
    _, table = stage_table(
        [{"stages": stages, "wall_s": sum(t["wall_s"] for t in stages.values()) + 5}]
    )
    assert table[-1].split()[:3] == ["DVC", "itself", "5.0"]
    chatter = re.findall(r"^[IWE]\d{4} \d\d:\d\d:\d\d.*$|^.*absl::InitializeLog.*$", output, re.M)
    assert not chatter, chatter
    test_metrics = json.loads((repo / "metrics/test.json").read_text())
    assert test_metrics["accuracy"] > 0.85
    assert (repo / "models/export/saved_model/saved_model.pb").exists()
    assert (repo / "metrics/train/plots/metrics/eval/accuracy.tsv").exists()
    report = (repo / "metrics/report.md").read_text()
    assert "| NBSVM baseline |" in report
    assert "![ROC curve (test)](figures/roc.svg)" in report
    assert (repo / "metrics/figures/roc.svg").read_text().startswith("<svg")
    plots = json.loads(dvc(run, "plots", "show", "--json"))["data"]
    assert {"Loss per epoch", "ROC curve (test)", "Confusion matrix (test)"} <= set(plots)
    _check_both_models_probabilities(repo)

    assert "Data and pipelines are up to date" in dvc(run, "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline run")

    output = dvc(run, "exp", "run", "-S", "merge_mode=ave")
    for stage in set(STAGES) - set(NETWORK_STAGES):  # the linear baseline included
        assert f"Stage '{stage}' didn't change, skipping" in output
    for stage in NETWORK_STAGES:
        assert f"Running stage '{stage}'" in output

    from sentiment.classifier.model.saving import load_trained_model

    assert "merge_mode=ave" in architecture(load_trained_model(repo / "models/model.keras"))
    card = json.loads((repo / "models/export/model_card.json").read_text())
    assert "merge_mode=ave" in card["model"]
    assert yaml.safe_load((repo / "params.yaml").read_text())["merge_mode"] == "ave"

    every = json.loads(dvc(run, "metrics", "diff", "--json", "--all"))
    assert every["metrics/test.json"]["accuracy"]["old"] == test_metrics["accuracy"]
    # another model: some test metric moved (which ones depends on the CPU's last bits)
    assert json.loads(dvc(run, "metrics", "diff", "--json")).get("metrics/test.json")
    assert "metrics/test.json" in dvc(run, "metrics", "diff")
    # the shipped model's metrics lead `dvc metrics show` (and `dvc exp show`'s columns)
    table = dvc(run, "metrics", "show", "--md").splitlines()[2:]
    shown = [line.split()[1] for line in table if line.startswith("| ")]
    assert shown[:3] == ["metrics/shipped.json", "metrics/test.json", "metrics/blend.json"]

    # Another vocabulary: preprocess writes the words again, byte for byte, so DVC leaves the
    # baseline as it is.
    words = {path.name: path.read_bytes() for path in (repo / "data/words").iterdir()}
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / "params.yaml").write_text(
        yaml.safe_dump({**params, "vocab_size": params["vocab_size"] // 2})
    )
    output = dvc(run, "repro", "baseline")
    assert "Running stage 'preprocess'" in output
    assert "Stage 'baseline' didn't change, skipping" in output
    assert {path.name: path.read_bytes() for path in (repo / "data/words").iterdir()} == words


@pytest.mark.slow
def test_an_ensemble_trains_evaluates_and_exports_as_one_model(tmp_path):
    repo, run = make_project(tmp_path / "project", ensemble=2, epochs=2)
    output = dvc(run, "repro", "export")
    assert "ensemble member 2 of 2, seed 43" in output
    assert "parity with the trained model" in output  # the export stage's checks passed
    live = json.loads((repo / "metrics/train/metrics.json").read_text())
    assert live["saved_model"]["val_accuracy"] == _saved_models_validation_accuracy(repo)
    assert 0.6 < live["saved_model"]["val_accuracy"] <= 1.0  # above chance after 2 short epochs
    epochs = (repo / "metrics/train/plots/metrics/eval/accuracy.tsv").read_text().splitlines()
    steps = [line.split("\t")[0] for line in epochs[1:]]
    assert steps == ["0", "1", "2", "3"]  # each member's two epochs in turn
    assert live["step"] == 3
    card = json.loads((repo / "models/export/model_card.json").read_text())
    assert card["params"]["ensemble"] == 2


@pytest.mark.slow
def test_with_weight_averaging_the_train_stage_reports_the_saved_models_accuracy(tmp_path):
    repo, run = make_project(tmp_path / "project", weight_averaging=0.9, epochs=2)
    output = dvc(run, "repro", "train")
    live = json.loads((repo / "metrics/train/metrics.json").read_text())
    saved = _saved_models_validation_accuracy(repo)
    assert live["saved_model"]["val_accuracy"] == saved
    assert f"val_accuracy {saved:.4f}" in output  # the stage's summary line quotes it


@pytest.mark.slow
def test_each_ship_value_is_reported_exported_and_served(tmp_path):
    repo, run = make_project(tmp_path / "project", ship="network")
    for ship in ("network", "baseline", "blend"):
        params = yaml.safe_load((repo / "params.yaml").read_text())
        (repo / "params.yaml").write_text(yaml.safe_dump(params | {"ship": ship}, sort_keys=False))
        output = dvc(run, "repro", "export")
        if ship != "network":  # only what reads ship runs again
            assert "Stage 'train' didn't change, skipping" in output
            assert "Stage 'baseline' didn't change, skipping" in output
        _check_shipped(repo, run, ship, output, tmp_path)


def _check_shipped(repo: Path, run, ship: str, output: str, tmp_path: Path) -> None:
    """The shipped model's metrics, card, report, and what `sentiment predict` serves."""
    from sentiment.classifier.data.splits import load_split
    from sentiment.classifier.model.blend import blend, choose_blend
    from sentiment.classifier.model.ngrams import NgramModel

    what = {"network": "", "baseline": ", the baseline's n-gram model", "blend": ", the blend"}
    assert f"export: models/export{what[ship]} (parity with" in output
    assert f"evaluate: ships the {ship}, test accuracy" in output
    card = json.loads((repo / "models/export/model_card.json").read_text())
    assert card["shipped"] == ship and "tflite" not in card["serving"]
    baseline = json.loads((repo / "metrics/baseline.json").read_text())
    network = json.loads((repo / "metrics/test.json").read_text())
    blended = json.loads((repo / "metrics/blend.json").read_text())
    shipped = json.loads((repo / "metrics/shipped.json").read_text())
    # the shipped model's metrics are its own, scored alike, and the card says the same
    member = {"network": network, "baseline": baseline, "blend": blended}[ship]
    assert shipped["model"] == ship
    for key in ("accuracy", "roc_auc", "log_loss"):
        assert shipped[key] == pytest.approx(member[key], abs=1e-6)
        assert card["test_metrics"][key] == pytest.approx(member[key], abs=1e-6)
    assert blended["validation_accuracy"] >= baseline["validation_accuracy"]  # by construction
    report = (repo / "metrics/report.md").read_text()
    assert f"What ships (`ship: {ship}`)" in report
    texts = ["a wonderful, moving film", "dull and far too long"]
    baseline_model = NgramModel.load(repo / "models/baseline")
    expected = baseline_model.probabilities_of_texts(texts) if ship == "baseline" else None
    if ship == "baseline":
        assert card["model"].startswith("NBSVM baseline")
    elif ship == "blend":
        # the weight is the one the validation split chooses, and the card scores that blend
        validation = load_split(repo / "data/processed/validation.npz")
        network_scores = np.load(repo / "models/validation_scores.npy")
        baseline_scores = np.load(repo / "models/baseline/validation_scores.npy")
        choice = choose_blend(network_scores, baseline_scores, validation.labels, "log_odds")
        assert card["test_metrics"]["blend_weight"] == choice.weight == blended["weight"]
        assert card["model"].startswith(f"blend of the network (weight {choice.weight:g})")
        test = load_split(repo / "data/processed/test.npz")
        scores = blend(
            np.load(repo / "models/test_scores.npy"),
            np.load(repo / "models/baseline/test_scores.npy"),
            choice.weight,
            "log_odds",
        )
        accuracy = np.mean((scores >= 0.5) == test.labels)
        assert card["test_metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    (tmp_path / "reviews.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    served = {}
    for model in ("models/export", "models/export/model.keras"):
        printed = run(
            sys.executable,
            "-m",
            "sentiment",
            "predict",
            "--model",
            model,
            "--file",
            str(tmp_path / "reviews.txt"),
        )
        lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
        served[model] = [line["probability"] for line in lines]
    keras_file = served["models/export/model.keras"]
    np.testing.assert_allclose(served["models/export"], keras_file, atol=1e-6)
    if expected is not None:
        np.testing.assert_allclose(served["models/export"], expected, atol=1e-5)


def _check_both_models_probabilities(repo: Path) -> None:
    """train's validation probabilities are the saved network's; the baseline's saved model reads
    the raw test texts into the probabilities its stage saved, and validation's into the ones its
    choice was made on."""
    from sentiment.classifier.data.reviews import read_splits
    from sentiment.classifier.data.splits import load_split
    from sentiment.classifier.model.ngrams import NgramModel

    validation = load_split(repo / "data/processed/validation.npz")
    network = np.load(repo / "models/validation_scores.npy")
    live = json.loads((repo / "metrics/train/metrics.json").read_text())
    assert network.shape == (len(validation),) and network.dtype == np.float32
    accuracy = np.mean((network >= 0.5) == validation.labels)
    assert accuracy == pytest.approx(live["eval"]["accuracy"], abs=1e-6)

    baseline = NgramModel.load(repo / "models/baseline")
    test_texts = [text for text, _ in read_splits(repo / "data/raw")["test"]]
    saved = np.load(repo / "models/baseline/test_scores.npy")
    assert np.abs(baseline.probabilities_of_texts(test_texts) - saved).max() < 1e-6
    metrics = json.loads((repo / "metrics/baseline.json").read_text())
    chosen_on = np.load(repo / "models/baseline/validation_scores.npy")
    accuracy = np.mean((chosen_on >= 0.5) == validation.labels)
    assert accuracy == pytest.approx(metrics["validation_accuracy"], abs=1e-6)
    assert 0 < metrics["log_loss"] < 0.7


def _saved_models_validation_accuracy(repo: Path) -> float:
    """The validation accuracy of models/model.keras as loaded from disk, the one to compare."""
    from sentiment.classifier.data.splits import load_split
    from sentiment.classifier.model.inference import validation_accuracy
    from sentiment.classifier.model.saving import load_trained_model

    return validation_accuracy(
        load_trained_model(repo / "models/model.keras"),
        load_split(repo / "data/processed/validation.npz"),
    )


@pytest.mark.slow
def test_a_bad_param_stops_the_pipeline_before_any_work(project):
    repo, _ = project
    # written by hand, as a user would
    bad = dataclasses.asdict(Params()) | SMALL_PARAMS | {"merge_mode": "avg"}
    (repo / "params.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode != 0
    assert "error: merge_mode 'avg' is not one of sum, mul, concat, ave, none" in result.stderr
    assert not (repo / "data/raw").exists()
