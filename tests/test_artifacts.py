"""The exported model as a DVC artifact: declared in dvc.yaml, fetched by name from a clone."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, dvc, make_project, project_env

ARTIFACT = "sentiment-classifier"


def test_the_exported_model_is_declared_as_a_model_artifact_with_description_and_labels():
    pipeline = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    artifact = pipeline["artifacts"][ARTIFACT]
    assert artifact["type"] == "model"
    assert artifact["desc"].strip() and artifact["labels"]
    # the path is an output of a stage, so DVC caches and pushes it
    assert {artifact["path"]} & set(pipeline["stages"]["export"]["outs"])


@pytest.mark.slow
def test_dvc_artifacts_get_fetches_the_exported_model_from_a_clone(tmp_path):
    repo, run = make_project(
        tmp_path / "project", synthetic_reviews=400, epochs=1, export_tflite=False
    )
    remote = tmp_path / "remote"
    dvc(run, "remote", "add", "--default", "storage", str(remote))  # committed: clones see it
    dvc(run, "repro", "export")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "the exported model")
    # A version is a git tag in GTO's format (what `gto register` writes); get takes the latest.
    run("git", "tag", "-a", f"{ARTIFACT}@v0.1.0", "-m", "Registering artifact version")
    dvc(run, "push")
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(repo), str(clone))

    fetched = tmp_path / "fetched"
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "artifacts", "get", str(clone), ARTIFACT, "-o", fetched],
        cwd=tmp_path,  # outside any repository, as a user who only wants the model
        env=project_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    exported = repo / "models" / "export"
    files = sorted(path.relative_to(exported) for path in exported.rglob("*") if path.is_file())
    assert files and files == sorted(
        path.relative_to(fetched) for path in fetched.rglob("*") if path.is_file()
    )
    for name in files:
        assert (fetched / name).read_bytes() == (exported / name).read_bytes()
