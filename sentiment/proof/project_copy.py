"""A fresh copy of this project in its own git + DVC repository: for tests, benchmarks, sweeps."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

import yaml

from sentiment.classifier.data.imdb import MIRROR_ENV, UNLABELLED_MIRROR_ENV
from sentiment.params import Params
from sentiment.tools import dvc, git

# The checkout this package runs from (sentiment/proof/ is two folders below it).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# What the pipeline needs to run: its definition and code, not its outputs or metrics.
PROJECT_FILES = (
    "dvc.yaml",
    "params.yaml",
    ".gitignore",
    ".dvcignore",
    "imdb",
    "synthetic",
    "none",
)
PROJECT_FOLDERS = ("stages", "sentiment")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "pipeline copy",
    "GIT_AUTHOR_EMAIL": "pipeline-copy@localhost",
    "GIT_COMMITTER_NAME": "pipeline copy",
    "GIT_COMMITTER_EMAIL": "pipeline-copy@localhost",
}


def project_env(
    mirror: Path | None = None, unlabelled_mirror: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment DVC runs a copy's stages in: this interpreter's `python`, quiet tools.

    The IMDB mirror is `mirror` if given, the mirror of its unlabelled reviews
    `unlabelled_mirror`; an inherited IMDB_MIRROR or IMDB_UNLABELLED_MIRROR is dropped, so a copy
    never reads a mirror by accident.
    """
    env = os.environ | GIT_IDENTITY | {"TF_CPP_MIN_LOG_LEVEL": "3", "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    for variable, path in ((MIRROR_ENV, mirror), (UNLABELLED_MIRROR_ENV, unlabelled_mirror)):
        env.pop(variable, None)
        if path is not None:
            env[variable] = str(path.resolve())
    return env | extra


def write_params(path: Path, **overrides) -> Path:
    """A complete params.yaml (DVC needs every declared key): the defaults with `overrides`."""
    values = dataclasses.asdict(Params()) | overrides
    path.write_text(yaml.safe_dump(values, sort_keys=False))  # unchecked: tests write bad ones
    return path


def copy_project(destination: Path, **param_overrides) -> Path:
    """This project's pipeline, committed in a new git + DVC repository (empty cache, no outputs).

    With param_overrides, params.yaml is written whole from the defaults and those overrides.
    """
    destination.mkdir(parents=True)
    for name in PROJECT_FILES:
        shutil.copy(PROJECT_ROOT / name, destination / name)
    for folder in PROJECT_FOLDERS:
        shutil.copytree(
            PROJECT_ROOT / folder,
            destination / folder,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    if param_overrides:
        write_params(destination / "params.yaml", **param_overrides)
    env = project_env()
    git("init", "-q", cwd=destination, env=env)
    git("config", "user.name", GIT_IDENTITY["GIT_AUTHOR_NAME"], cwd=destination, env=env)
    git("config", "user.email", GIT_IDENTITY["GIT_AUTHOR_EMAIL"], cwd=destination, env=env)
    dvc("init", "-q", cwd=destination, env=env)
    git("add", "-A", cwd=destination, env=env)
    git("commit", "-qm", "pipeline copy", cwd=destination, env=env)  # the queue needs a commit
    return destination
