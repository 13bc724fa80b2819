"""sentiment tune and apply-params: a real study on DVC's queue, resumed, confirmed and applied."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml

from sentiment.errors import PipelineError
from sentiment.params import ParamsError, load_params
from sentiment.proof.experiment_queue import setting
from sentiment.tuning.overlay import apply_overlay, apply_to_text, read_overlay
from sentiment.tuning.space import parse_space
from tests.conftest import PROJECT_ROOT, dvc, make_project, project_env

BASE = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())


def test_the_committed_search_space_is_valid():
    from sentiment.tuning.space import load_space
    from sentiment.tuning.study import SPACE_FILE

    space = load_space(PROJECT_ROOT / SPACE_FILE, BASE)
    assert space.dimensions and all(d.key in BASE for d in space.dimensions)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {"search": {"unit": {"choices": [8]}}},
            "search.unit: not a params.yaml key (did you mean 'units'?)",
        ),
        (
            {"search": {"learning_rate": {"low": 0.01, "high": 0.001}}},
            "empty range: low 0.01 is not below high 0.001",
        ),
        ({"search": {"units": {"choices": []}}}, "search.units: choices is empty"),
        ({"search": {"units": {"choices": [8, 8]}}}, "repeat a value"),
        (
            {"search": {"merge_mode": {"choices": ["sum", "sideways"]}}},
            "merge_mode 'sideways' is not one of",
        ),
        (
            {"search": {"units": {"low": 8, "high": 64.5}}},
            "units is a whole number: high 64.5 is not",
        ),
        (
            {"search": {"dropout": {"low": 0.0, "high": 0.5, "log": True}}},
            "a log scale needs low above 0",
        ),
        ({"search": {"dropout": {"choices": [0.1], "low": 0.0}}}, "unknown or mixed settings"),
        (
            {"search": {"merge_mode": {"low": 1, "high": 2}}},
            "merge_mode is not a number: give choices",
        ),
        ({"search": {"seed": {"choices": [1, 2]}}}, "the seed is not tuned"),
        ({"search": {}}, "search is empty"),
        (
            {"serch": {"units": {"choices": [8]}}},
            "unknown section 'serch' (did you mean 'search'?)",
        ),
        (
            {"fixed": {"epochs": 0}, "search": {"units": {"choices": [8]}}},
            "fixed.epochs: epochs must be",
        ),
        (
            {"fixed": {"units": 8}, "search": {"units": {"choices": [8]}}},
            "units both fixed and searched",
        ),
    ],
)
def test_a_bad_search_space_is_refused_in_one_line(space, message):
    with pytest.raises(PipelineError) as raised:
        parse_space(space, BASE, "space.yaml")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_search_space_checks_each_value_against_the_rest_of_params_yaml():
    # backward_cell needs bidirectional: true; fixed says false, so the choice is refused.
    space = {"fixed": {"bidirectional": False}, "search": {"backward_cell": {"choices": ["gru"]}}}
    with pytest.raises(PipelineError, match="backward_cell 'gru' needs bidirectional: true"):
        parse_space(space, BASE, "space.yaml")


@pytest.mark.parametrize("value", ["sum", "a,b", "", "true", "0.5", " padded", 64, 0.0003, False])
def test_a_setting_reads_back_as_the_same_value(value):
    key, text = setting("labels", value).split("=", 1)
    assert key == "labels"
    assert yaml.safe_load(text) == value


def test_an_overlay_changes_only_its_keys_and_keeps_every_comment():
    text = (PROJECT_ROOT / "params.yaml").read_text()
    changed = apply_to_text(text, {"units": 48, "merge_mode": "concat", "mask_padding": False})
    before, after = text.splitlines(), changed.splitlines()
    differing = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert [a.split("#")[0].strip() for _, a in differing] == [
        "units: 48",
        "merge_mode: concat",
        "mask_padding: false",
    ]
    for old, new in differing:  # the comment stays, at its column
        if "#" in old:
            assert new[new.index("#") :] == old[old.index("#") :]
            assert new.index("#") == old.index("#")


def test_an_overlay_is_checked_before_params_yaml_is_touched(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((PROJECT_ROOT / "params.yaml").read_text())
    before = params.read_text()
    with pytest.raises(ParamsError, match="merge_mode 'sideways' is not one of"):
        apply_overlay(params, {"merge_mode": "sideways"})
    with pytest.raises(PipelineError, match=r"params\.yaml has no top-level line `unit: \.\.\.`"):
        apply_overlay(params, {"unit": 8})
    assert params.read_text() == before
    (tmp_path / "bad.yaml").write_text("- units\n")
    with pytest.raises(PipelineError, match=r"must map params\.yaml keys to values"):
        read_overlay(tmp_path / "bad.yaml")


def _tune(repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentiment", "tune", "--space", "space.yaml", *args],
        cwd=repo,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )


def _experiments(run) -> dict[str, str]:
    """{experiment name: its revision} on the current commit."""
    shown = json.loads(dvc(run, "exp", "show", "--json"))
    base = next(row for row in shown if row["rev"] != "workspace")
    return {rev["name"]: rev["rev"] for group in base["experiments"] or [] for rev in group["revs"]}


# A default that learns next to nothing in two epochs (learning rate 0.0001), a search that always
# learns (0.03): the winner is beyond any seed noise, whichever dropout the sampler draws. The
# network ships: a study compares validation accuracy, and each of its runs exports the lighter
# model.
WEAK_DEFAULT = {
    "synthetic_reviews": 300,
    "epochs": 2,
    "learning_rate": 0.0001,
    "batch_size": 32,
    "ship": "network",
}
SPACE = {
    "fixed": {"learning_rate": 0.03},
    "search": {"dropout": {"low": 0.0, "high": 0.2}, "units": {"choices": [8, 16]}},
}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A study on synthetic data: two trials within a one-second budget, then resumed to four
    (one of them left running by a crash), confirmed over two more seeds."""
    import optuna

    repo, run = make_project(tmp_path_factory.mktemp("tune") / "project", **WEAK_DEFAULT)
    (repo / "space.yaml").write_text(yaml.safe_dump(SPACE))
    dvc(run, "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "default run")  # the queue runs git-tracked files

    first = _tune(
        repo,
        "--study",
        "tiny",
        "--trials",
        "10",
        "--minutes",
        "0.01",
        "--jobs",
        "2",
        "--confirm-seeds",
        "0",
    )
    assert first.returncode == 0, first.stderr
    after_first = _experiments(run)
    # Let the first run's workers exit before the second starts its own (a worker that is shutting
    # down when a task arrives can leave it marked running).
    dvc(run, "queue", "stop")
    deadline = time.monotonic() + 120
    while "Worker status: 0 active, 0 idle" not in dvc(run, "queue", "status"):
        assert time.monotonic() < deadline, "the queue's workers did not stop"
        time.sleep(2)

    storage = f"sqlite:///{repo / 'metrics/tuning/tiny/study.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    crashed = study.ask()  # asked and queued, then the process died: never told
    crashed.suggest_float("dropout", 0.0, 0.2)
    crashed.suggest_categorical("units", [8, 16])
    crashed.set_user_attr("experiment", "tune-tiny-lost")
    crashed.set_user_attr("overrides", {"learning_rate": 0.03} | crashed.params)

    second = _tune(
        repo,
        "--study",
        "tiny",
        "--trials",
        "4",
        "--jobs",
        "2",
        "--confirm-top",
        "1",
        "--confirm-seeds",
        "2",
    )
    assert second.returncode == 0, second.stderr
    record = json.loads((repo / "metrics/tuning/tiny/trials.json").read_text())
    return repo, run, first, second, after_first, record, crashed


@pytest.mark.slow
def test_a_study_runs_its_trials_as_queued_dvc_experiments_within_its_time_budget(tuned):
    _, run, first, _, after_first, _, _ = tuned
    assert set(after_first) == {"tune-tiny-000", "tune-tiny-001"}  # one batch, then time was up
    assert "minutes are up after 2 trials; run again to go on" in first.stderr
    shown = json.loads(dvc(run, "exp", "show", "--json"))
    base = next(row for row in shown if row["rev"] != "workspace")
    for group in base["experiments"]:
        data = group["revs"][0]["data"]
        if group["revs"][0]["name"] == "tune-tiny-000":
            assert data["params"]["params.yaml"]["data"]["learning_rate"] == 0.03
            assert "eval" in data["metrics"]["metrics/train/metrics.json"]["data"]
    assert "!! metrics/tuning/tiny/study.db" in run("git", "status", "--porcelain", "--ignored")


@pytest.mark.slow
def test_a_resumed_study_reruns_no_finished_trial_and_retries_the_lost_one(tuned):
    _, run, _, _, after_first, record, crashed = tuned
    now = _experiments(run)
    for name, revision in after_first.items():  # the finished trials were not run again
        assert now[name] == revision
    states = {t["number"]: t["state"] for t in record["trials"]}
    assert states == {0: "complete", 1: "complete", 2: "fail", 3: "complete"}
    retried = next(t for t in record["trials"] if t["number"] == 3)
    assert retried["params"] == crashed.params  # the lost trial's point, run this time
    assert "tune-tiny-003" in now and "tune-tiny-002" not in now


@pytest.mark.slow
def test_a_study_confirms_its_winner_over_seeds_and_writes_report_pictures_and_overlay(tuned):
    repo, _, _, second, _, record, _ = tuned
    confirmation = record["confirmation"]
    assert confirmation["seeds"] == [42, 43, 44]
    assert len(confirmation["default"]["validation_accuracy"]["values"]) == 3
    (candidate,) = confirmation["candidates"]
    assert candidate["beats_default"] and confirmation["winner"] == candidate["trial"]
    assert "beats the default beyond seed noise" in second.stderr
    folder = repo / "metrics/tuning/tiny"
    report = (folder / "report.md").read_text()
    assert "## Confirmation over seeds" in report and "![history](history.svg)" in report
    assert "| NBSVM baseline |" in report
    for picture in ("history.svg", "params.svg"):
        assert (folder / picture).read_text().startswith("<svg")
    overlay = yaml.safe_load((folder / "best.yaml").read_text())
    base = yaml.safe_load((repo / "params.yaml").read_text())
    assert overlay == {k: v for k, v in candidate["params"].items() if base[k] != v}
    assert overlay["learning_rate"] == 0.03


@pytest.mark.slow
def test_the_winner_applies_to_params_yaml_or_runs_as_an_experiment(tuned):
    repo, run, _, _, _, _, _ = tuned
    overlay = yaml.safe_load((repo / "metrics/tuning/tiny/best.yaml").read_text())
    ran = run(
        sys.executable, "-m", "sentiment", "apply-params", "metrics/tuning/tiny/best.yaml", "--run"
    )
    assert "apply-params: dvc exp run -S learning_rate=0.03" in ran
    run(sys.executable, "-m", "sentiment", "apply-params", "metrics/tuning/tiny/best.yaml")
    params = load_params(repo / "params.yaml")
    assert all(getattr(params, key) == value for key, value in overlay.items())
    run("git", "checkout", "params.yaml")


@pytest.mark.slow
def test_a_bad_search_space_stops_the_command_before_any_trial(tmp_path):
    repo, _ = make_project(tmp_path / "project")
    (repo / "space.yaml").write_text("search:\n  learning_rate: {low: 0.01, high: 0.001}\n")
    result = _tune(repo, "--study", "bad")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: space.yaml: search.learning_rate: empty range: low 0.01 is not below high 0.001"
    ]
    assert not (repo / "metrics/tuning").exists()


def test_a_resumed_study_knows_the_overrides_of_experiments_an_earlier_run_queued(tmp_path):
    """A trial an earlier run left running, its experiment still queued (no worker started): the
    study waits for it, with the overrides the queue needs to queue it again if it is orphaned."""
    from sentiment.tuning.study import Study

    repo, _ = make_project(tmp_path / "project", **WEAK_DEFAULT)  # committed: the queue needs it
    space = parse_space(SPACE, BASE, "space.yaml")
    study = Study(repo, "resumed", space, BASE, sampler_seed=0)
    trial = study.study.ask()
    overrides = {"learning_rate": 0.03, "dropout": 0.1, "units": 8}
    trial.set_user_attr("experiment", "tune-resumed-lost")
    trial.set_user_attr("overrides", overrides)
    earlier = Study(repo, "resumed", space, BASE, sampler_seed=0).queue  # the run that queued it
    earlier.queue("tune-resumed-lost", overrides)

    resumed = Study(repo, "resumed", space, BASE, sampler_seed=0)
    assert resumed.queue.overrides == {}
    assert [t.number for t in resumed._recover()] == [trial.number]  # still queued: waited for
    assert resumed.queue.overrides == {"tune-resumed-lost": overrides}


def test_a_trial_is_scored_on_its_saved_models_validation_accuracy():
    from sentiment.tuning.study import objective

    train = "metrics/train/metrics.json"
    last_epoch = {"metrics": {train: {"eval.accuracy": 0.85}}}
    assert objective(last_epoch) == 0.85  # the saved model is the last epoch's
    best_epoch = {"metrics": {train: {"eval.accuracy": 0.85, "saved_model.val_accuracy": 0.88}}}
    assert objective(best_epoch) == 0.88
    assert objective({"metrics": {}}) is None
