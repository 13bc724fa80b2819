"""What the pull-request workflow (.github/workflows/review.yml) does, as commands tests can run.

Usage:
  sentiment pull-request get-data
      with DVC_REMOTE_URL set (a repository secret): use it as the DVC remote (this machine
      only, `.dvc/config.local`) and pull what it holds; else nothing: `dvc repro` downloads IMDB
  sentiment pull-request comment --pr N --body FILE [--head SHA] [--repo OWNER/NAME]
      post FILE as the pull request's review comment, or update the one posted before

GitHub is reached through its own `gh` CLI, which the workflow authenticates with GH_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from sentiment.console import log
from sentiment.errors import PipelineError
from sentiment.tools import dvc, gh

# Hidden in the rendered comment; marks the one comment this workflow owns on a pull request.
MARKER = "<!-- sentiment-review -->"
CI_REMOTE = "ci"


def comment_body(review: str, *, head_url: str | None = None) -> str:
    """The comment: the marker, the review's markdown, and where the full report is."""
    parts = [MARKER, "# Review against the noise", "", review.rstrip("\n")]
    if head_url:
        parts += ["", f"The full report with its figures: [metrics/report.md]({head_url})."]
    return "\n".join(parts) + "\n"


def report_url(*, server: str, repository: str, sha: str) -> str:
    """metrics/report.md at one commit, on GitHub's web pages."""
    return f"{server}/{repository}/blob/{sha}/metrics/report.md"


def find_review_comment(comments: list[dict]) -> int | None:
    """The id of the first comment carrying MARKER, if any."""
    for comment in comments:
        if (comment.get("body") or "").startswith(MARKER):
            return comment["id"]
    return None


def post_review_comment(*, repository: str, pr: int, body_file: Path) -> tuple[str, int]:
    """Update the pull request's review comment with body_file, or create it: (action, id)."""
    pages = json.loads(
        gh("api", "--paginate", "--slurp", f"repos/{repository}/issues/{pr}/comments") or "[]"
    )
    comments = [comment for page in pages for comment in page]  # --slurp: a list of pages
    existing = find_review_comment(comments)
    body = f"body=@{body_file}"  # gh reads the value from the file: no size limit of argv
    if existing is None:
        created = json.loads(
            gh("api", "--method", "POST", "-F", body, f"repos/{repository}/issues/{pr}/comments")
        )
        return "created", created["id"]
    gh("api", "--method", "PATCH", "-F", body, f"repos/{repository}/issues/comments/{existing}")
    return "updated", existing


def remote_options(text: str) -> list[tuple[str, str]]:
    """`key=value` lines (DVC_REMOTE_OPTIONS) as pairs; blank lines and `#` comments skipped."""
    options = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            # the line itself is not echoed: it may hold a credential
            raise PipelineError(
                f"DVC_REMOTE_OPTIONS line {number} is not key=value: write one "
                "`dvc remote modify` option a line, e.g. access_key_id=..."
            )
        options.append((key.strip(), value.strip()))
    return options


def get_data(environ: dict[str, str]) -> bool:
    """Pull the pipeline's outputs from the remote named by DVC_REMOTE_URL; False if none is."""
    url = environ.get("DVC_REMOTE_URL", "").strip()
    if not url:
        return False
    # --local: the URL and credentials go to .dvc/config.local (git-ignored), never a commit.
    dvc("remote", "add", "--local", "--force", "--default", CI_REMOTE, url)
    for key, value in remote_options(environ.get("DVC_REMOTE_OPTIONS", "")):
        dvc("remote", "modify", "--local", CI_REMOTE, key, value)
    # --allow-missing: outputs this change alters are not in the remote yet; dvc repro makes them.
    dvc("pull", "--allow-missing")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """pull-request's command line: its two steps."""
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    steps.add_parser(
        "get-data",
        help="dvc pull from the remote in DVC_REMOTE_URL, if set",
        description="With DVC_REMOTE_URL set, use it as the DVC remote (this machine only) and "
        "pull what it holds; else do nothing: `dvc repro` downloads IMDB.",
    )
    comment = steps.add_parser(
        "comment",
        help="post or update the review comment",
        description="Post FILE as the pull request's review comment, or update the one posted "
        "before (gh, authenticated by GH_TOKEN).",
    )
    comment.add_argument("--pr", type=int, required=True, help="pull request number")
    comment.add_argument("--body", type=Path, required=True, help="the comparison's markdown")
    comment.add_argument("--head", help="the head commit, to link the full report at")
    comment.add_argument(
        "--repo", default=os.environ.get("GITHUB_REPOSITORY"), help="OWNER/NAME (on Actions: set)"
    )


def run(args: argparse.Namespace) -> None:
    """Run one step of the pull-request workflow."""
    if args.step == "get-data":
        if get_data(dict(os.environ)):
            log("get-data: pulled from the DVC remote in DVC_REMOTE_URL")
        else:
            log("get-data: no DVC_REMOTE_URL secret: `dvc repro` downloads IMDB")
        return
    if not args.repo:
        raise PipelineError("no repository: pass --repo OWNER/NAME (Actions sets it)")
    if not args.body.is_file():
        raise PipelineError(f"{args.body} does not exist: run `sentiment compare` first")
    head_url = None
    if args.head:
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        head_url = report_url(server=server, repository=args.repo, sha=args.head)
    with tempfile.TemporaryDirectory() as folder:
        comment_file = Path(folder) / "comment.md"
        comment_file.write_text(
            comment_body(args.body.read_text(encoding="utf-8"), head_url=head_url),
            encoding="utf-8",
        )
        action, comment_id = post_review_comment(
            repository=args.repo, pr=args.pr, body_file=comment_file
        )
    log(f"comment: {action} the review comment {comment_id} on pull request {args.pr}")
