"""The pull-request workflow's own commands: the review comment through `gh`, the data through DVC.

`gh` is GitHub's service, not the thing under test: a stand-in on PATH records each call and
answers with canned JSON. DVC is real, with a local folder as the remote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sentiment.errors import PipelineError
from sentiment.proof.pull_request import MARKER, comment_body, find_review_comment, remote_options
from tests.conftest import PROJECT_ROOT, project_env
from tests.workflow_steps import run_step

# Records argv and, for `-F body=@FILE`, the file's text (gh reads it before the file goes).
FAKE_GH = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
body = next((a[len("body=@"):] for a in args if a.startswith("body=@")), None)
record = {{"args": args, "body": open(body).read() if body else None}}
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
if "POST" in args:
    print(json.dumps({{"id": 777}}))
elif "PATCH" in args:
    print("{{}}")
else:
    print(open(os.environ["FAKE_GH_COMMENTS"]).read())
"""
REVIEW_MARKDOWN = "## Metrics changed against main\n\n| accuracy | 0.88 | 0.87 |\n"


@pytest.fixture
def fake_gh(tmp_path):
    """(environment with the stand-in gh first on PATH, its call log, the comments file)."""
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    gh = bin_folder / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable))
    gh.chmod(0o755)
    calls, comments = tmp_path / "gh-calls.jsonl", tmp_path / "comments.json"
    env = project_env() | {
        "PATH": f"{bin_folder}{os.pathsep}{project_env()['PATH']}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "FAKE_GH_LOG": str(calls),
        "FAKE_GH_COMMENTS": str(comments),
        "GITHUB_REPOSITORY": "owner/imdb",
        "GITHUB_SERVER_URL": "https://github.com",
        "PR_NUMBER": "14",
        "HEAD_SHA": "abc1234",
    }

    def recorded() -> list[dict]:
        return [json.loads(line) for line in calls.read_text().splitlines()]

    return env, recorded, comments


def _comment_step(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    (tmp_path / "review.md").write_text(REVIEW_MARKDOWN)
    return run_step("review.yml", "Post or update the review comment", cwd=tmp_path, env=env)


def test_the_first_review_creates_one_comment_with_the_marker_and_the_report_link(
    tmp_path, fake_gh
):
    env, recorded, comments = fake_gh
    # two pages of someone else's comments (`gh api --paginate --slurp` gives a list of pages)
    comments.write_text(json.dumps([[{"id": 1, "body": "LGTM"}], [{"id": 2, "body": None}]]))
    result = _comment_step(tmp_path, env)
    assert result.returncode == 0, result.stderr
    listing, create = recorded()
    assert listing["args"][-1] == "repos/owner/imdb/issues/14/comments"
    assert "--paginate" in listing["args"] and "--slurp" in listing["args"]
    assert create["args"][:3] == ["api", "--method", "POST"]
    assert create["args"][-1] == "repos/owner/imdb/issues/14/comments"
    assert create["body"].startswith(MARKER)
    assert REVIEW_MARKDOWN in create["body"]
    assert "(https://github.com/owner/imdb/blob/abc1234/metrics/report.md)" in create["body"]
    assert "created the review comment 777 on pull request 14" in result.stderr


def test_a_later_review_updates_the_marked_comment_and_creates_none(tmp_path, fake_gh):
    env, recorded, comments = fake_gh
    earlier = comment_body("an earlier review")
    comments.write_text(json.dumps([[{"id": 5, "body": "LGTM"}, {"id": 42, "body": earlier}]]))
    result = _comment_step(tmp_path, env)
    assert result.returncode == 0, result.stderr
    calls = recorded()
    assert len(calls) == 2
    assert calls[1]["args"][:3] == ["api", "--method", "PATCH"]
    assert calls[1]["args"][-1] == "repos/owner/imdb/issues/comments/42"
    assert REVIEW_MARKDOWN in calls[1]["body"]
    assert "updated the review comment 42" in result.stderr


def test_a_gh_failure_is_one_line_naming_the_call(tmp_path, fake_gh):
    env, _, comments = fake_gh
    comments.write_text("not json")
    env = env | {"PATH": f"{tmp_path}{os.pathsep}{project_env()['PATH']}"}  # a gh that fails
    (tmp_path / "gh").write_text(
        "#!/bin/sh\necho 'HTTP 403: Resource not accessible' >&2\nexit 1\n"
    )
    (tmp_path / "gh").chmod(0o755)
    result = _comment_step(tmp_path, env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: `gh api --paginate --slurp repos/owner/imdb/issues/14/comments` failed: "
        "HTTP 403: Resource not accessible"
    )


def test_only_a_comment_that_starts_with_the_marker_is_ours():
    comments = [{"id": 1, "body": f"quoting {MARKER}"}, {"id": 2, "body": comment_body("x")}]
    assert find_review_comment(comments) == 2
    assert find_review_comment([{"id": 1, "body": "LGTM"}]) is None


def test_remote_options_are_key_value_lines_and_a_bad_one_is_named_by_number_only():
    text = "# S3-compatible\naccess_key_id = AKIA\n\nsecret_access_key=s3cr=t\n"
    assert remote_options(text) == [("access_key_id", "AKIA"), ("secret_access_key", "s3cr=t")]
    with pytest.raises(PipelineError, match=r"^DVC_REMOTE_OPTIONS line 2 is not key=value"):
        remote_options("# a comment\nAKIAsecret\n")


def test_get_data_pulls_from_the_secret_remote_and_commits_no_credentials(tmp_path):
    origin, clone, remote = tmp_path / "origin", tmp_path / "clone", tmp_path / "remote"
    env = project_env() | {"PYTHONPATH": str(PROJECT_ROOT)}

    def run(*command, cwd=origin):
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"

    origin.mkdir()
    run("git", "init", "-q")
    run(sys.executable, "-m", "dvc", "init", "-q")
    (origin / "reviews.txt").write_text("A wonderful film.\n")
    run(sys.executable, "-m", "dvc", "add", "-q", "reviews.txt")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "data")
    run(sys.executable, "-m", "dvc", "remote", "add", "--local", "pushed", str(remote))
    run(sys.executable, "-m", "dvc", "push", "-q", "-r", "pushed")
    run("git", "clone", "-q", str(origin), str(clone), cwd=tmp_path)

    options = textwrap.dedent("""\
        # a comment line, then one option as `dvc remote modify` takes it
        verify = false
    """)
    secrets = {"DVC_REMOTE_URL": str(remote), "DVC_REMOTE_OPTIONS": options}
    result = run_step("review.yml", "Get the data", cwd=clone, env=env | secrets)
    assert result.returncode == 0, result.stderr
    assert (clone / "reviews.txt").read_text() == "A wonderful film.\n"
    local_config = (clone / ".dvc" / "config.local").read_text()
    assert str(remote) in local_config and "verify = false" in local_config
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""  # the remote's URL and options stay out of git


def test_get_data_without_a_remote_secret_leaves_the_download_to_dvc_repro(tmp_path):
    env = project_env() | {"PYTHONPATH": str(PROJECT_ROOT), "DVC_REMOTE_URL": ""}
    result = run_step("review.yml", "Get the data", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "no DVC_REMOTE_URL secret: `dvc repro` downloads IMDB" in result.stderr
    assert list(tmp_path.iterdir()) == []
