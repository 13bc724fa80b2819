"""Promises DVC makes, kept under repetition, interruption and a cache round trip."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import dvc, make_project, project_env

pytestmark = pytest.mark.slow

# Every file the pipeline writes whose bytes must not change between runs: metrics, plots,
# data and the trained model. (The SavedModel is not among them: TensorFlow writes it in an
# order that changes between processes; see NOT_BYTE_REPRODUCIBLE in proof/reproduction.py.)
BYTE_STABLE = (
    "metrics/data.json",
    "metrics/baseline.json",
    "metrics/test.json",
    "metrics/report.md",
    "metrics/train/metrics.json",
    "metrics/plots/roc.json",
    "metrics/plots/confusion.csv",
    "metrics/figures/roc.svg",
    "metrics/figures/loss.svg",
    "metrics/train/plots/metrics/eval/accuracy.tsv",
    "data/raw/train.jsonl",
    "data/processed/train.npz",
    "data/words/test.npz",
    "models/model.keras",
    "models/test_scores.npy",
    "models/validation_scores.npy",
    "data/words/words.txt",
    "models/baseline/words.txt",
    "models/baseline/model.npz",
    "models/baseline/validation_scores.npy",
    "models/baseline/test_scores.npy",
    "models/export/model.keras",
)


def digests(repo: Path) -> dict[str, str]:
    return {name: hashlib.sha256((repo / name).read_bytes()).hexdigest() for name in BYTE_STABLE}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """A small project after one `dvc repro`, committed, with the digests of its outputs."""
    repo, run = make_project(tmp_path_factory.mktemp("reliability") / "project")
    dvc(run, "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "first run")
    return repo, run, digests(repo)


def test_repro_force_twice_gives_byte_identical_metrics_data_and_model(reproduced):
    repo, run, first = reproduced
    dvc(run, "repro", "--force")
    assert digests(repo) == first
    assert "Data and pipelines are up to date" in dvc(run, "status")


def test_push_delete_pull_restores_every_output_with_the_same_hashes(reproduced, tmp_path):
    repo, run, first = reproduced
    storage = tmp_path / "storage"  # a local remote outside the work tree: no credentials
    dvc(run, "remote", "add", "--local", "-f", "-d", "test-storage", str(storage))
    dvc(run, "push")
    lock = (repo / "dvc.lock").read_bytes()
    for folder in (".dvc/cache", "data/raw", "data/processed", "data/words", "models"):
        shutil.rmtree(repo / folder)
    dvc(run, "pull")
    assert digests(repo) == first
    assert (repo / "dvc.lock").read_bytes() == lock
    assert "Data and pipelines are up to date" in dvc(run, "status")


def test_a_training_killed_mid_epoch_leaves_nothing_half_written_and_reruns_cleanly(tmp_path):
    repo, run = make_project(tmp_path / "project", epochs=500)  # far longer than we wait
    dvc(run, "repro", "preprocess")
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=repo,
        env=project_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the stage dies with it
    )
    epochs_logged = repo / "metrics/train/plots/metrics/train/loss.tsv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
        not epochs_logged.exists() or len(epochs_logged.read_text().splitlines()) < 3
    ):
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)  # like a machine losing power: no clean-up runs
    process.wait()

    assert not (repo / "models/model.keras").exists()
    assert "train" not in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    cached = [path for path in (repo / ".dvc/cache").rglob("*") if zipfile.is_zipfile(path)]
    assert not any("model.weights.h5" in zipfile.ZipFile(path).namelist() for path in cached)

    params = yaml.safe_load((repo / "params.yaml").read_text()) | {"epochs": 2}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = dvc(run, "repro")
    assert "Running stage 'train'" in output
    assert (repo / "models/model.keras").exists()
    assert "Data and pipelines are up to date" in dvc(run, "status")
    assert not list(repo.rglob(".*.partial*"))  # the killed run's staging file is gone too
