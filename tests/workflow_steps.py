"""The GitHub Actions workflows' steps, for tests that run a step's command as the workflow does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"


def workflow_steps(workflow: str) -> list[dict]:
    """Every step of every job of .github/workflows/<workflow>."""
    jobs = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"]
    return [step for job in jobs.values() for step in job["steps"]]


def step_command(workflow: str, name: str) -> str:
    """The `run:` command of the step called `name`."""
    return next(step["run"] for step in workflow_steps(workflow) if step.get("name") == name)


def run_step(
    workflow: str, name: str, *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    """Run a step's command verbatim, in the shell GitHub gives `run:` on Linux (`bash -e`)."""
    return subprocess.run(
        ["bash", "-e", "-c", step_command(workflow, name)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
