"""sentiment benchmark steps: a real TensorFlow profile of a few training steps, read back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import dvc, make_project, project_env


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    repo, run = make_project(tmp_path_factory.mktemp("steps") / "project")
    dvc(run, "repro", "preprocess")
    return repo


def _steps(repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sentiment",
            "benchmark",
            "steps",
            "--data",
            "data/processed",
            *args,
        ],
        cwd=repo,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_the_profile_says_where_a_steps_time_goes(processed):
    done = _steps(processed, "--steps", "4", "--warm-up", "2", "--output", "steps.json")
    assert done.returncode == 0, done.stderr
    summary = json.loads((processed / "steps.json").read_text())
    assert json.loads(done.stdout.strip().splitlines()[-1]) == summary
    groups = summary["op_time_per_step_s"]
    # the default layer runs the fused kernel forward and back, and the embedding's gathers
    assert groups["recurrent kernels"] > 0 and groups["gathers and scatters"] > 0
    assert {"BlockLSTMV2", "BlockLSTMGradV2"} <= set(summary["op_types_per_step_s"])
    assert 0 < sum(groups.values()) <= 2.5 * summary["step_s"] * summary["cores"]
    assert summary["recurrent_matrix_work_per_step_s"] > 0
    assert all(rate > 0 for rate in summary["matmul_gflops"].values())
    # every epoch of training at the profiled speed, and no faster than its arithmetic allows
    assert summary["projected_training_s"] >= summary["least_training_s_at_best_rate"]
    assert "one training step:" in done.stderr and "the whole training" in done.stderr


@pytest.mark.slow
def test_more_steps_than_an_epoch_are_refused_in_one_line(processed):
    done = _steps(processed, "--steps", "100000")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "profile fewer steps" in line]
    assert len(lines) == 1 and "100000" in lines[0]


@pytest.mark.parametrize("mask_padding", [True, False])
def test_the_profiled_widths_are_those_of_trainings_first_epoch(processed, mask_padding):
    from sentiment.classifier.data.batching import batch_dataset
    from sentiment.classifier.data.splits import load_split
    from sentiment.measurement.step_profile import _batch_lengths
    from sentiment.params import ModelConfig, TrainingConfig, load_params

    params = load_params(processed / "params.yaml").replace(mask_padding=mask_padding)
    training = TrainingConfig.from_params(params)
    model = ModelConfig.from_params(params, vocab_size=200, classes=2)
    train = load_split(processed / "data/processed/train.npz")
    batches = batch_dataset(
        train, batch_size=training.batch_size, seed=training.seed, by_length=mask_padding
    )
    assert _batch_lengths(train, training, model) == [int(ids.shape[1]) for ids, _ in batches]
