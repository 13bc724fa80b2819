"""`sentiment records`: recorded runs side by side, their statistics, and targets over every run."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sentiment import cli
from sentiment.files import write_json
from sentiment.proof.run_record import record_of_workspace

# (seed, saved validation accuracy, network test accuracy, blend test accuracy)
RUNS = [(42, 0.93, 0.915, 0.926), (43, 0.92, 0.921, 0.925), (44, 0.925, 0.919, 0.927)]


def workspace_record(root: Path, seed: int, val: float, test: float, blend: float) -> dict:
    """A record as `sentiment record` writes it, of a workspace holding these metrics files."""
    (root / "metrics" / "train").mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump({"seed": seed, "ensemble": 2}))
    write_json(root / "metrics/test.json", {"accuracy": test, "roc_auc": 0.97})
    write_json(root / "metrics/blend.json", {"weight": 0.4, "accuracy": blend})
    write_json(
        root / "metrics/train/metrics.json",
        {"eval": {"accuracy": 0.5}, "saved_model": {"val_accuracy": val}},
    )
    times = [{"stage": "train", "wall_s": 1000.0 + seed}]
    return record_of_workspace(root, ["dvc", "exp", "run", "-S", f"seed={seed}"], times)


@pytest.fixture()
def project(tmp_path):
    """A folder with metrics/records/seed-N.json for RUNS."""
    for seed, val, test, blend in RUNS:
        record = workspace_record(tmp_path / f"run-{seed}", seed, val, test, blend)
        write_json(tmp_path / "metrics/records" / f"seed-{seed}.json", record)
    return tmp_path


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def records(capsys, monkeypatch):
    """Run `sentiment records ARGS` in a folder, as the console script does, in this process."""

    def run(cwd: Path, *args: str) -> Result:
        monkeypatch.chdir(cwd)
        with pytest.raises(SystemExit) as status:
            cli.main(["records", *args])
            sys.exit(0)
        captured = capsys.readouterr()
        return Result(status.value.code or 0, captured.out, captured.err)

    return run


def table_rows(text: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [cell.strip() for cell in cells[1:]] for cells in rows}


def test_each_record_is_a_row_and_the_statistics_are_over_them(records, project):
    result = records(project, "seed-42", "seed-43", "seed-44")
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert rows["seed-43"] == ["43", "2", "0.92", "0.921", "0.925", "1,043"]
    assert rows["mean"][2:5] == ["0.925", "0.918333", "0.926"]
    assert rows["lowest"][2:5] == ["0.92", "0.915", "0.925"]
    assert rows["highest"][2:5] == ["0.93", "0.921", "0.927"]


def test_a_target_is_met_only_when_every_record_meets_it(records, project):
    met = records(
        project, "seed-42", "seed-43", "seed-44", "--target", "metrics/blend.json:accuracy>=0.925"
    )
    assert met.returncode == 0, met.stderr
    assert "blend: test accuracy >= 0.925: 3 of 3 records, mean 0.926 — met" in met.stdout

    missed = records(
        project,
        *("seed-42", "seed-43", "seed-44"),
        *("--target", "metrics/test.json:accuracy>=0.918"),
        *("--target", "metrics/test.json:log_loss<=0.3"),
    )
    assert missed.returncode == 1
    assert (
        "network: test accuracy >= 0.918: 2 of 3 records, mean 0.918333 — missed" in missed.stdout
    )
    # a metric no record holds is shown empty and its target missed, never passed
    assert "network: test log loss <= 0.3: no record has this metric — missed" in missed.stdout
    assert missed.stderr.startswith("failed: 2 of 2 targets missed")


def test_a_record_without_the_saved_models_score_shows_the_last_epochs(records, project):
    record = json.loads((project / "metrics/records/seed-42.json").read_text())
    del record["metrics"]["metrics/train/metrics.json"]["saved_model.val_accuracy"]
    write_json(project / "metrics/records/last-epoch.json", record)
    rows = table_rows(records(project, "last-epoch").stdout)
    assert rows["last-epoch"][2] == "0.5"  # eval.accuracy: the saved model is the last epoch's


def test_the_figure_draws_every_record_and_target(records, project):
    figure = project / "runs.svg"
    result = records(
        project,
        *("seed-42", "seed-43", str(project / "metrics/records/seed-44.json")),
        *("--target", "metrics/test.json:accuracy>=0.92", "--figure", str(figure)),
    )
    assert result.returncode == 1  # the target is missed; the figure is drawn all the same
    svg = figure.read_text()
    ElementTree.fromstring(svg)
    for name in ("seed-42", "seed-43", "seed-44", "network: test accuracy"):
        assert name in svg


@pytest.mark.parametrize(
    "args, message",
    [
        (["seed-4"], "no record metrics/records/seed-4.json: give a name from metrics/records/"),
        (["params.yaml.json"], "no record params.yaml.json"),
        (["not-a-record"], "not-a-record.json has no metrics: not a record"),
        (["broken"], "broken.json is not JSON"),
        (["seed-42", "--target", "metrics/test.json:accuracy>0.92"], "write it FILE:KEY>=VALUE"),
        (
            ["seed-42", "--target", "test:accuracy>=0.92"],
            "write it FILE:KEY, e.g. metrics/test.json",
        ),
        (["seed-42", "--metric", "metrics/test.json"], "write it FILE:KEY"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(records, project, args, message):
    (project / "metrics/records/not-a-record.json").write_text('{"accuracy": 0.9}')
    (project / "metrics/records/broken.json").write_text('{"metrics": ')
    result = records(project, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert result.stdout == ""
