""".ci/reproduce: IMDB from the mirror beside the checkout, else through tensorflow-datasets, else
a loud skip. Each path runs the real script, the real `sentiment imdb-source` and the real
download stage, on a tiny IMDB-shaped archive: the stage refuses it by its count of reviews, which
it can only know by reading it from the source the script chose."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, make_aclimdb_archive, make_project, project_env

REVIEWS = {
    "train": [("good film", 1), ("bad film", 0), ("fine", 1)],
    "test": [("ok", 1), ("dull", 0)],
}
REFUSED = "the train split has 3 labelled reviews, IMDB has 25,000"
UNREACHABLE = "127.0.0.1:9"  # the discard port: nothing listens, the probe fails at once


def _archive(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # tensorflow-datasets' builder also reads unlabelled reviews and refuses an empty split
    return make_aclimdb_archive(path, REVIEWS, **{"aclImdb/train/unsup/0_0.txt": b"unlabelled"})


def _environment(tfds_dir: Path, **extra: str) -> dict[str, str]:
    env = project_env() | {"TFDS_DATA_DIR": str(tfds_dir), "SENTIMENT_IMDB_ORIGIN": UNREACHABLE}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `sentiment`, `dvc`
    return env | extra


def _reproduce(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    shutil.copytree(PROJECT_ROOT / ".ci", repo / ".ci", dirs_exist_ok=True)
    return subprocess.run(
        ["bash", ".ci/reproduce"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )


def prepare_tfds_offline(archive: Path, data_dir: Path) -> None:
    """tensorflow-datasets' own imdb_reviews folder, built from a local archive (no network)."""
    script = textwrap.dedent(
        f"""
        import tensorflow_datasets as tfds
        tfds.download.DownloadManager.download = lambda self, url: {str(archive)!r}
        tfds.builder("imdb_reviews", data_dir={str(data_dir)!r}).download_and_prepare()
        """
    )
    subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, env=project_env()
    )


@pytest.fixture
def project(tmp_path):
    repo, _ = make_project(tmp_path / "checkout" / "project", dataset="imdb")
    return repo


@pytest.mark.slow
def test_with_the_mirror_beside_the_checkout_it_reproduces_from_the_mirror(project, tmp_path):
    mirror = _archive(project.parent / "shared/data/aclImdb_labeled.tar.gz")
    result = _reproduce(project, _environment(tmp_path / "empty-tfds"))
    assert f"ci: reproducing the committed results on IMDB from: mirror {mirror}" in result.stdout
    assert result.returncode != 0 and REFUSED in result.stderr  # it read the mirror


@pytest.mark.slow
def test_without_a_mirror_it_reproduces_through_tensorflow_datasets_folder(project, tmp_path):
    tfds_dir = tmp_path / "tfds"
    prepare_tfds_offline(_archive(tmp_path / "imdb.tar.gz"), tfds_dir)
    result = _reproduce(project, _environment(tfds_dir))
    assert "ci: reproducing the committed results on IMDB from: tensorflow-datasets cache" in (
        result.stdout
    )
    assert result.returncode != 0 and REFUSED in result.stderr  # it read tensorflow-datasets'


@pytest.mark.slow
def test_with_neither_mirror_nor_network_it_skips_loudly(project, tmp_path):
    result = _reproduce(project, _environment(tmp_path / "empty-tfds", GITHUB_ACTIONS="true"))
    assert result.returncode == 0, result.stderr
    assert "ci: WARNING: SKIPPED reproducing the committed results on IMDB" in result.stderr
    assert "127.0.0.1 is unreachable" in result.stderr
    assert result.stdout.startswith("::warning title=Reproduction skipped::none: ")
    assert "Running stage" not in result.stdout + result.stderr


def test_imdb_source_names_the_mirror_first(tmp_path):
    mirror = _archive(tmp_path / "imdb.tar.gz")
    result = subprocess.run(
        [sys.executable, "-m", "sentiment", "imdb-source"],
        env=_environment(tmp_path / "empty-tfds", IMDB_MIRROR=str(mirror)),
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout) == (0, f"mirror {mirror}\n")
