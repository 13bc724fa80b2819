"""Experiment fan-out with DVC's own queue: a merge-mode sweep on two workers."""

import json
import os
import time

import pytest

from sentiment.classifier.data.imdb import MIRROR_SETTING
from sentiment.params import MERGE_MODES
from tests.conftest import dvc, make_aclimdb_archive, make_project

QUEUE_TIMEOUT_S = 600


def _experiments(show_json: str) -> tuple[dict, dict[str, dict]]:
    """`dvc exp show --json` as (the baseline commit's data, {experiment name: its data})."""
    baseline = next(row for row in json.loads(show_json) if row["rev"] != "workspace")
    experiments = {
        rev["name"]: rev["data"] for group in baseline["experiments"] or [] for rev in group["revs"]
    }
    return baseline["data"], experiments


def _wait_for_the_queue(run) -> str:
    """`dvc queue status` once nothing is queued or running; fails the test past the timeout."""
    deadline = time.monotonic() + QUEUE_TIMEOUT_S
    while any(state in (status := dvc(run, "queue", "status")) for state in ("Queued", "Running")):
        assert time.monotonic() < deadline, f"the queue did not finish:\n{status}"
        time.sleep(2)
    return status


def _params(data: dict) -> dict:
    return data["params"]["params.yaml"]["data"]


def _test_metrics(data: dict) -> dict:
    return data["metrics"]["metrics/test.json"]["data"]


@pytest.mark.slow
def test_a_queued_merge_mode_sweep_on_two_workers_gives_each_experiment_its_own_results(
    tmp_path,
):
    repo, run = make_project(tmp_path / "project", epochs=2)
    dvc(run, "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline run")  # queued experiments copy git-tracked files only

    for mode in MERGE_MODES:
        dvc(run, "exp", "run", "--queue", "-S", f"merge_mode={mode}", "-n", f"merge-{mode}")
    dvc(run, "queue", "start", "-j", "2")
    status = _wait_for_the_queue(run)
    assert "Failed" not in status, status

    baseline, experiments = _experiments(dvc(run, "exp", "show", "--json"))
    assert set(experiments) == {f"merge-{mode}" for mode in MERGE_MODES}
    for mode in MERGE_MODES:
        assert _params(experiments[f"merge-{mode}"])["merge_mode"] == mode
        assert 0.0 <= _test_metrics(experiments[f"merge-{mode}"])["accuracy"] <= 1.0
    # Each worker ran its own experiment: the queued sum is the committed run, bit for bit ...
    assert _test_metrics(experiments["merge-sum"]) == _test_metrics(baseline)
    # ... and a queued experiment is the same as the one run alone in the workspace.
    dvc(run, "exp", "run", "-S", "merge_mode=ave")
    alone = json.loads((repo / "metrics/test.json").read_text())
    assert _test_metrics(experiments["merge-ave"]) == alone
    assert alone != _test_metrics(baseline)

    columns = "Experiment|merge_mode|metrics/test.json:accuracy"
    table = dvc(run, "exp", "show", "--md", "--drop", ".*", "--keep", columns)
    for mode in MERGE_MODES:  # the table a user reads lists each with its own merge mode
        row = next(line for line in table.splitlines() if f"[merge-{mode}]" in line)
        assert f"| {mode} " in row


@pytest.mark.slow
def test_a_queued_experiment_reads_the_mirror_from_the_git_ignored_local_setting(tmp_path):
    # Three reviews: the download stage refuses them as not IMDB, naming their count, which it
    # can only know by reading this archive (without a mirror it would try tensorflow-datasets).
    reviews = {"train": [("good", 1), ("bad", 0), ("fine", 1)], "test": [("ok", 1), ("dull", 0)]}
    archive = make_aclimdb_archive(tmp_path / "imdb.tar.gz", reviews)
    repo, run = make_project(tmp_path / "project", dataset="imdb")
    # make_project's environment has no IMDB_MIRROR; a relative path, as a user may write it
    (repo / MIRROR_SETTING).write_text(os.path.relpath(archive, repo) + "\n")
    assert run("git", "status", "--porcelain") == "", "the setting must be git-ignored"

    dvc(run, "exp", "run", "--queue", "-n", "mirrored")
    dvc(run, "queue", "start")
    assert "Failed" in _wait_for_the_queue(run)
    logs = dvc(run, "queue", "logs", "mirrored")
    assert "error: the train split has 3 labelled reviews, IMDB has 25,000" in logs
