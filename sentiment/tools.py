"""git, DVC and GitHub's gh run as subprocesses: one way to call them, one way to fail."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sentiment.errors import PipelineError

# `python -m dvc` with this interpreter: the DVC installed beside the project, whatever PATH says.
DVC = (sys.executable, "-m", "dvc")


def run_tool(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    shown_lines: int = 1,
) -> str:
    """The command's stdout; if it fails, a PipelineError naming it, with the last lines it wrote.

    shown_lines: how many of its last output lines the error quotes (1 keeps the error one line).
    """
    try:
        result = subprocess.run(
            list(command), cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except OSError as error:
        raise PipelineError(f"cannot run {command[0]} ({error.strerror}): install it") from None
    if result.returncode != 0:
        written = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
        detail = "\n".join(written[-shown_lines:])
        where = f" in {cwd}" if cwd is not None else ""
        raise PipelineError(f"`{_shown(command)}` failed{where}: {detail}")
    return result.stdout


def tool_output(command: Sequence[str], *, cwd: Path | None = None) -> bytes | None:
    """The command's stdout as bytes, or None when it is missing or fails (an optional fact)."""
    try:
        result = subprocess.run(list(command), cwd=cwd, capture_output=True, check=False)
    except OSError:
        return None
    return result.stdout if result.returncode == 0 else None


def dvc(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, **kw) -> str:
    """A DVC command's stdout (see run_tool)."""
    return run_tool([*DVC, *args], cwd=cwd, env=env, **kw)


def dvc_json(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> dict:
    """A DVC command's --json output."""
    return json.loads(dvc(*args, "--json", cwd=cwd, env=env) or "{}")


def git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """A git command's stdout (see run_tool)."""
    return run_tool(["git", *args], cwd=cwd, env=env)


def git_show(path: str, revision: str = "HEAD") -> bytes | None:
    """A file's bytes at `revision`, or None where git does not have it."""
    return tool_output(["git", "show", f"{revision}:{path}"])


def git_has(revision: str, path: str | None = None) -> bool:
    """Whether git knows `revision` (and, if given, `path` in it)."""
    target = f"{revision}:{path}" if path else f"{revision}^{{commit}}"
    return tool_output(["git", "cat-file", "-e", target]) is not None


def gh(*args: str) -> str:
    """A GitHub CLI command's stdout (see run_tool)."""
    return run_tool(["gh", *args])


def _shown(command: Sequence[str]) -> str:
    """The command as a person would type it: `dvc ...` rather than `/path/python -m dvc ...`."""
    words = list(command)
    if words[: len(DVC)] == list(DVC):
        words = ["dvc", *words[len(DVC) :]]
    return shlex.join(words)
