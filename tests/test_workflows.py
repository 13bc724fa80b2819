"""The GitHub Actions workflows: valid for actionlint, and every command in them one tests run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.workflow_steps import WORKFLOWS, workflow_steps

# Each step a test runs verbatim (tests/workflow_steps.py: run_step), and the test that does.
EXERCISED_STEPS = {
    ("review.yml", "Get the data"): (
        "tests/test_pull_request.py",
        "test_get_data_pulls_from_the_secret_remote_and_commits_no_credentials",
    ),
    ("review.yml", "Review against the base branch"): (
        "tests/test_comparison.py",
        "test_the_workflow_review_step_writes_the_comment_and_fails_on_a_real_drop",
    ),
    ("review.yml", "Post or update the review comment"): (
        "tests/test_pull_request.py",
        "test_a_later_review_updates_the_marked_comment_and_creates_none",
    ),
}
# Commands the suite runs in its own words, not through run_step.
EXERCISED_COMMANDS = {
    "dvc repro": (
        "tests/test_pipeline.py",
        "test_repro_then_merge_mode_experiment_then_metrics_diff",
    ),
}
# What sets the suite up: the README's install command, and .ci/run, which runs the suite
# itself.
SETUP_COMMANDS = {'python -m pip install -e ".[dev]"', "CI=true bash .ci/run"}


def _run_steps() -> list[tuple[str, dict]]:
    return [
        (workflow.name, step)
        for workflow in sorted(WORKFLOWS.glob("*.yml"))
        for step in workflow_steps(workflow.name)
        if "run" in step
    ]


def test_every_command_a_workflow_runs_is_one_the_test_suite_runs():
    assert _run_steps(), "no workflow runs anything"
    for workflow, step in _run_steps():
        command = step["run"].strip()
        where = EXERCISED_STEPS.get((workflow, step.get("name")))
        where = where or EXERCISED_COMMANDS.get(command)
        assert where or command in SETUP_COMMANDS, f"{workflow}: no test runs {command!r}"
        if where:
            path, test = where
            source = (PROJECT_ROOT / path).read_text()
            assert f"def {test}(" in source, f"{path} has no {test}"


def test_the_exercised_steps_are_run_by_the_tests_that_claim_them():
    for (workflow, name), (path, _) in EXERCISED_STEPS.items():
        source = (PROJECT_ROOT / path).read_text()
        assert f'run_step("{workflow}", "{name}"' in " ".join(source.split()) or re.search(
            rf'"{workflow}",\s*"{re.escape(name)}"', source
        ), f"{path} does not run step {name!r} of {workflow}"


def _uses(workflow: str, action: str) -> list[dict]:
    return [s for s in workflow_steps(workflow) if s.get("uses", "").startswith(f"{action}@")]


@pytest.mark.parametrize("workflow", ["ci.yml", "review.yml"])
def test_each_workflow_caches_pip(workflow):
    (setup,) = _uses(workflow, "actions/setup-python")
    assert setup["with"]["cache"] == "pip"


def test_the_review_job_sees_the_base_branch_may_comment_and_comments_on_failure():
    review = yaml.safe_load((WORKFLOWS / "review.yml").read_text())
    assert review["permissions"]["pull-requests"] == "write"
    assert set(review[True]) == {"pull_request"}  # YAML 1.1 reads the key `on` as True
    (checkout,) = _uses("review.yml", "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0
    comment = next(s for s in workflow_steps("review.yml") if s.get("name", "").startswith("Post"))
    assert "!cancelled()" in comment["if"]  # after a failed gate too; the job stays failed


def test_the_ci_workflow_runs_on_push_and_pull_request():
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    assert set(ci[True]) == {"push", "pull_request"}


def test_actionlint_passes_on_the_workflows():
    # Installed with the dev extra; actionlint runs shellcheck on each `run:` script.
    tools = Path(sys.executable).parent
    actionlint, shellcheck = tools / "actionlint", tools / "shellcheck"
    assert actionlint.exists() and shellcheck.exists(), 'pip install -e ".[dev]" installs both'
    result = subprocess.run(
        [actionlint, "-shellcheck", shellcheck, *sorted(WORKFLOWS.glob("*.yml"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_pre_commit_config_is_valid_and_needs_no_network():
    config_file = PROJECT_ROOT / ".pre-commit-config.yaml"
    result = subprocess.run(
        [Path(sys.executable).parent / "pre-commit", "validate-config", str(config_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    repos = yaml.safe_load(config_file.read_text())["repos"]
    assert [repo["repo"] for repo in repos] == ["local"]  # nothing to clone
    hooks = {hook["id"]: hook for hook in repos[0]["hooks"]}
    assert {
        "ruff-check",
        "ruff-format",
        "dvc-pre-commit",
        "dvc-pre-push",
        "dvc-post-checkout",
    } <= set(hooks)
    assert all(hook["language"] == "system" for hook in hooks.values())
