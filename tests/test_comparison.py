"""`sentiment compare` and `sentiment check-reproduction` on a real git + DVC repository with a
one-stage pipeline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.workflow_steps import run_step

# A pipeline whose test accuracy is a param: each test sets the metrics it needs.
DVC_YAML = """\
stages:
  score:
    cmd: python score.py
    deps: [score.py]
    params: [score]
    metrics:
      - metrics/test.json:
          cache: false
"""
SCORE_PY = """\
import json, pathlib, yaml
score = yaml.safe_load(open("params.yaml"))["score"]
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("metrics/test.json").write_text(json.dumps({"accuracy": score}))
"""


@pytest.fixture
def repo(tmp_path):
    env = os.environ | {
        "PYTHONPATH": str(PROJECT_ROOT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }

    def run(*command, check=True):
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        if check:
            assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        return result

    run("git", "init", "-q", "-b", "main")
    run(sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "score.py").write_text(SCORE_PY)
    return tmp_path, run


def set_score(repo_path, run, score, commit=True):
    (repo_path / "params.yaml").write_text(f"score: {score}\n")
    run(sys.executable, "-m", "dvc", "repro", "-q")
    if commit:
        run("git", "add", "-A")
        run("git", "commit", "-qm", f"score {score}")


def compare(run, *args):
    return run(sys.executable, "-m", "sentiment", "compare", *args, check=False)


def check_reproduction(run):
    return run(sys.executable, "-m", "sentiment", "check-reproduction", check=False)


@pytest.mark.slow
def test_a_branch_that_loses_accuracy_fails_the_comparison_with_the_tables(repo):
    path, run = repo
    set_score(path, run, 0.88)
    run("git", "checkout", "-qb", "change")
    set_score(path, run, 0.87)
    result = compare(run, "main")
    assert result.returncode == 1
    tables = " ".join(result.stdout.split())  # markdown cells are padded to align
    assert "| metrics/test.json | accuracy | 0.88 | 0.87 | -0.01 |" in tables
    assert "| params.yaml | score | 0.88 | 0.87 |" in tables
    assert "test accuracy dropped by 1.00 points against main" in result.stderr


@pytest.mark.slow
def test_a_branch_within_the_limit_passes_the_comparison(repo):
    path, run = repo
    set_score(path, run, 0.88)
    run("git", "checkout", "-qb", "change")
    set_score(path, run, 0.876)
    result = compare(run)
    assert result.returncode == 0, result.stderr
    moved = "The network's test accuracy moved by -0.40 points against main: within the limit"
    assert moved in result.stdout
    assert "No noise record" in result.stdout


@pytest.mark.slow
def test_main_without_metrics_is_said_plainly(repo):
    path, run = repo
    run("git", "commit", "-q", "--allow-empty", "-m", "empty main")
    run("git", "checkout", "-qb", "change")
    set_score(path, run, 0.88)
    result = compare(run, "main")
    assert result.returncode == 0, result.stderr
    assert "main has no metrics yet" in result.stdout


@pytest.mark.slow
def test_reproduced_metrics_and_lock_pass_the_check(repo):
    path, run = repo
    set_score(path, run, 0.88)
    run(sys.executable, "-m", "dvc", "repro", "--force", "-q")
    result = check_reproduction(run)
    assert result.returncode == 0, result.stderr
    assert "mode: same platform" in result.stdout
    assert "reproduced: 1 committed metrics equal" in result.stdout


@pytest.mark.slow
def test_metrics_not_made_by_the_committed_code_fail_the_check(repo):
    path, run = repo
    set_score(path, run, 0.88)
    (path / "metrics/test.json").write_text('{"accuracy": 0.95}')  # edited by hand
    run("git", "commit", "-qam", "better numbers")
    run(sys.executable, "-m", "dvc", "repro", "--force", "-q")
    result = check_reproduction(run)
    assert result.returncode == 1
    assert "metrics/test.json: accuracy 0.95 -> 0.88" in result.stderr


@pytest.mark.slow
def test_a_stale_lock_fails_the_check_and_says_what_to_rerun(repo):
    path, run = repo
    set_score(path, run, 0.88)
    (path / "score.py").write_text(SCORE_PY + "# a change committed without re-running\n")
    run("git", "commit", "-qam", "stale")
    run(sys.executable, "-m", "dvc", "repro", "-q")
    result = check_reproduction(run)
    assert result.returncode == 1
    assert "does not match what this commit's code produces (stages: score" in result.stderr
    assert "run `dvc repro` and commit dvc.lock and metrics/" in result.stderr


def write_noise(repo_path, accuracy_values, params=None):
    """A noise record for the score pipeline, as `sentiment measure-noise` writes it."""
    from sentiment.proof.seed_noise import spread

    record = {"seeds": list(range(len(accuracy_values))), "params": params or {"score": 0.88}}
    record["metrics"] = {"metrics/test.json": {"accuracy": spread(accuracy_values)}}
    (repo_path / "metrics/noise.json").write_text(json.dumps(record))


@pytest.mark.slow
def test_the_comparison_puts_each_change_beside_the_seed_noise_and_gates_on_it(repo):
    path, run = repo
    set_score(path, run, 0.88, commit=False)
    # std 0.00207 over 5 seeds: a difference of two runs has sd 0.0029, the band is 2 sd = 0.59 pts
    write_noise(path, [0.878, 0.880, 0.882, 0.881, 0.877])
    run("git", "add", "-A")
    run("git", "commit", "-qm", "score and noise")
    run("git", "checkout", "-qb", "change")
    set_score(path, run, 0.876)
    result = compare(run, "main")
    assert result.returncode == 0, result.stderr
    table = " ".join(result.stdout.split())
    row = (
        "| network: test accuracy | 0.8800 | 0.8760 | -0.40 points | ±0.59 points | within noise |"
    )
    assert row in table
    assert "within the limit (0.59 points: the noise band of metrics/noise.json, 5 seeds)" in table

    set_score(path, run, 0.87)
    result = compare(run, "main")
    assert result.returncode == 1
    assert "| -1.00 points | ±0.59 points | **worse** beyond noise |" in " ".join(
        result.stdout.split()
    )
    assert "dropped by 1.00 points against main (the limit is 0.59" in result.stderr


@pytest.mark.slow
def test_the_workflow_review_step_writes_the_comment_and_fails_on_a_real_drop(repo):
    path, run = repo
    set_score(path, run, 0.88)
    run("git", "checkout", "-qb", "change")
    set_score(path, run, 0.87)
    env = os.environ | {
        "PYTHONPATH": str(PROJECT_ROOT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "REVIEW_BASE": "main",  # the workflow's origin/<base branch>
    }
    result = run_step("review.yml", "Review against the base branch", cwd=path, env=env)
    assert result.returncode == 1  # the job fails; the comment step still posts review.md
    markdown = (path / "review.md").read_text()
    assert "| metrics/test.json | accuracy | 0.88 | 0.87 | -0.01 |" in " ".join(markdown.split())
    assert markdown.endswith(
        "**Review failed:** the network's test accuracy dropped by 1.00 points against main (the "
        "limit is 0.50: MAX_ACCURACY_DROP in sentiment/proof/comparison.py)\n"
    )


@pytest.mark.slow
def test_a_noise_record_of_another_configuration_claims_no_band(repo):
    path, run = repo
    set_score(path, run, 0.88, commit=False)
    write_noise(path, [0.878, 0.880, 0.882, 0.881, 0.877], params={"score": 0.5})
    run("git", "add", "-A")
    run("git", "commit", "-qm", "score and another configuration's noise")
    run("git", "checkout", "-qb", "change")
    set_score(path, run, 0.876)
    result = compare(run, "main")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "No noise record for main's configuration (metrics/noise.json was measured for" in text
    assert "other params (score)), so no change is told from seed noise here" in text
    assert "within the limit (0.50 points: MAX_ACCURACY_DROP" in text
    assert "±" not in result.stdout  # no band printed


def test_the_noise_table_compares_the_saved_models_validation_accuracy():
    from sentiment.proof.comparison import noise_table

    train = "metrics/train/metrics.json"
    spread = {"std": 0.004, "values": [0.87, 0.88]}
    noise = {"seeds": [1, 2], "metrics": {train: {"eval.accuracy": spread}}}
    # The base saved its last epoch (no saved_model block); the change stops early and saved
    # its best epoch, whose accuracy is not the last epoch's.
    changes = {
        train: {
            "eval.accuracy": {"old": 0.8800, "new": 0.8500},
            "saved_model.val_accuracy": {"old": None, "new": 0.8900},
        }
    }
    table = noise_table(changes, noise, "main")
    (row,) = [line for line in table.splitlines() if "validation accuracy" in line]
    assert row.startswith("| network: validation accuracy (saved model) | 0.8800 | 0.8900 | +1.00")


def test_the_shipped_models_metrics_lead_the_table_and_hold_the_gate():
    from sentiment.proof.comparison import (
        accuracy_drop,
        accuracy_gate,
        changed_only,
        gated_file,
        metrics_table,
        noise_table,
    )

    def change(old, new):
        return {"old": old, "new": new} | (
            {"diff": new - old} if isinstance(new, float) and isinstance(old, float) else {}
        )

    changes = {  # as `dvc metrics diff --all --json` gives them: files in no fixed order
        "metrics/baseline.json": {"accuracy": change(0.915, 0.915)},
        "metrics/train/metrics.json": {"saved_model.val_accuracy": change(0.88, 0.87)},
        "metrics/blend.json": {"weight": change(0.15, 0.3), "accuracy": change(0.917, 0.918)},
        "metrics/test.json": {"accuracy": change(0.877, 0.870)},
        "metrics/shipped.json": {
            "model": change("network", "blend"),
            "accuracy": change(0.877, 0.918),
        },
    }
    rows = metrics_table(changed_only(changes), "main").splitlines()
    assert rows[0] == "| Path | Metric | main | workspace | Change |"
    assert [row.split(" | ")[0] for row in rows[2:]] == [
        "| metrics/shipped.json",
        "| metrics/shipped.json",
        "| metrics/test.json",
        "| metrics/blend.json",
        "| metrics/blend.json",
        "| metrics/train/metrics.json",
    ]  # the unchanged baseline is left out
    assert rows[2] == "| metrics/shipped.json | accuracy | 0.877 | 0.918 | 0.041 |"
    assert rows[3] == "| metrics/shipped.json | model | network | blend | - |"
    # the gate holds the shipped model's accuracy, which rose, though the network's fell
    assert gated_file(changes) == "metrics/shipped.json"
    assert accuracy_drop(changes) == pytest.approx(-0.041)
    spread = {"std": 0.001, "values": [0.91, 0.92]}
    noise = {"seeds": [1, 2], "metrics": {"metrics/shipped.json": {"accuracy": spread}}}
    assert accuracy_gate(noise, "metrics/shipped.json")[0] == pytest.approx(2 * 2**0.5 * 0.001)
    table = noise_table(changes, noise, "main").splitlines()
    assert table[2].startswith("| shipped model: test accuracy | 0.8770 | 0.9180 |")
    # against a base that has no shipped model's metrics, the network's accuracy is gated
    del changes["metrics/shipped.json"]
    assert gated_file(changes) == "metrics/test.json"
    assert accuracy_drop(changes) == pytest.approx(0.007)
