"""The reproduction check on the real pipeline: same platform exact, another platform within noise.

"Another platform" is emulated on this machine as the noise tool does: ONEDNN_MAX_CPU_ISA=AVX
makes oneDNN dispatch to other kernels, and the platform record says so.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sentiment.proof.platform_record import (
    cpuinfo_fields,
    describe_platform,
    dispatch_features,
    numeric_environment,
    platform_differences,
)
from sentiment.proof.reproduction import (
    params_measured_differently,
    platform_dependent_stages,
    tolerance,
)
from tests.conftest import PROJECT_ROOT, make_project, project_env

EMULATED = {"ONEDNN_MAX_CPU_ISA": "AVX"}
# Two epochs: a model far from perfect, so its metrics move with the seed.
PARAMS = {"epochs": 2}
EXPORT_CODE = "sentiment/classifier/serving/export.py"  # only the export stage runs it


def test_a_noise_record_holds_for_knobs_added_since_at_their_defaults():
    measured = {"units": 10, "epochs": 5}
    # ensemble did not exist when the record was measured: at its default, the same runs
    assert params_measured_differently(measured, {"units": 10, "epochs": 5, "ensemble": 1}) == []
    assert params_measured_differently(measured, {"units": 10, "epochs": 5, "ensemble": 3}) == [
        "ensemble"
    ]
    assert params_measured_differently(measured, {"units": 12, "epochs": 5}) == ["units"]
    # a knob the record has but the params no longer do: another configuration
    assert params_measured_differently(measured | {"gone": 1}, {"units": 10, "epochs": 5}) == [
        "gone"
    ]


def test_tolerance_is_the_t_prediction_bound_of_a_difference_of_two_runs():
    # 10 seeds: t(0.9995, 9) = 4.781; times sqrt(2) for the difference of two runs
    assert tolerance(0.003, 10) == pytest.approx(4.781 * math.sqrt(2) * 0.003, rel=1e-3)
    assert tolerance(0.003, 5) > tolerance(0.003, 10)  # fewer seeds, less known, wider
    assert tolerance(0.0, 10) == 0.0  # what did not vary must be equal


def test_cpu_features_are_read_from_cpuinfo_and_ordered():
    fields = cpuinfo_fields(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 sse4_2 avx512f vmx\n\n"
        "processor\t: 1\nmodel name\t: Some CPU\n"
    )
    assert fields["model name"] == "Some CPU"
    assert dispatch_features(fields) == ["sse4_2", "avx2", "avx512f"]  # vmx does not dispatch


def test_the_platform_record_names_cpu_threads_versions_and_onednn():
    record = describe_platform()
    assert record["cpu"]["logical_cores"] >= 1
    assert record["versions"]["tensorflow"] and record["versions"]["scikit-learn"]
    assert isinstance(record["onednn"], bool)
    # threadpoolctl's view of the BLAS the baseline's linear algebra runs on
    blas = record["numeric_libraries"]["numpy blas"]
    assert blas["library"] in ("openblas", "mkl", "blis") and blas["version"] != "unknown"
    assert blas["threads"] >= 1 and blas["architecture"]
    native, changed = record | {"environment": {}}, record | {"environment": EMULATED}
    assert platform_differences(native, changed) == ["environment.ONEDNN_MAX_CPU_ISA: None -> AVX"]


def test_the_record_keeps_every_variable_of_the_numeric_libraries_and_no_other():
    environment = {
        "OPENBLAS_L2_SIZE": "512",
        "OPENBLAS_CORETYPE": "Haswell",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "OMP_NUM_THREADS": "2",
        "HOME": "/root",
        "TF_CPP_MIN_LOG_LEVEL": "3",  # how much TensorFlow logs, not how it computes
        "PYTHONHASHSEED": "0",
    }
    assert numeric_environment(environment) == {
        "OMP_NUM_THREADS": "2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_L2_SIZE": "512",
        "TF_ENABLE_ONEDNN_OPTS": "0",
    }


def test_the_training_stages_and_everything_they_feed_depend_on_the_platform():
    lock = yaml.safe_load((PROJECT_ROOT / "dvc.lock").read_text())
    expected = {"word_vectors", "pretrain", "train", "evaluate", "figures", "export"}
    assert platform_dependent_stages(lock) == expected


def test_the_baselines_last_bits_are_compared_on_its_platform_only():
    from sentiment.proof.reproduction import LAST_BITS_FOLLOW_THE_CPU, lock_differences

    committed = yaml.safe_load((PROJECT_ROOT / "dvc.lock").read_text())
    assert set(LAST_BITS_FOLLOW_THE_CPU) <= {
        out["path"] for out in committed["stages"]["baseline"]["outs"]
    }
    run = copy.deepcopy(committed)
    for out in run["stages"]["baseline"]["outs"]:
        if out["path"] in LAST_BITS_FOLLOW_THE_CPU:
            out["md5"] = "0" * 32 + ".dir"
    assert lock_differences(committed, run, same_platform=False) == {}
    changed = {"changed outs": sorted(LAST_BITS_FOLLOW_THE_CPU)}
    assert lock_differences(committed, run, same_platform=True) == {"baseline": [changed]}
    # the metrics it writes stay exact everywhere
    for out in run["stages"]["baseline"]["outs"]:
        if out["path"] == "metrics/baseline.json":
            out["md5"] = "1" * 32
    assert "baseline" in lock_differences(committed, run, same_platform=False)


def native_env() -> dict[str, str]:
    """The stages' environment without the emulation, even where the caller's has it set."""
    return {key: value for key, value in project_env().items() if key not in EMULATED}


def _copy(source: Path, destination: Path):
    """A copy of a test repository (git, DVC cache and work tree) and its run(*command)."""
    shutil.copytree(source, destination, symlinks=True)
    env = native_env()

    def run(*command: str, check: bool = True, **extra_env: str):
        result = subprocess.run(
            command, cwd=destination, env=env | extra_env, capture_output=True, text=True
        )
        if check:
            assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        return result

    return destination, run


def _check(run):
    return run(sys.executable, "-m", "sentiment", "check-reproduction", check=False)


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A project whose committed run comes with its noise record (3 seeds, AVX emulated)."""
    repo, _ = make_project(tmp_path_factory.mktemp("committed") / "project", **PARAMS)
    _, run = _copy(repo, repo.with_name("native"))  # run natively whatever the caller's env
    noise = [sys.executable, "-m", "sentiment", "measure-noise", "--seeds", "42", "7", "8"]
    run(*noise, "--emulate", "ONEDNN_MAX_CPU_ISA=AVX")
    run(sys.executable, "-m", "dvc", "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "committed run with its noise")
    return repo.with_name("native")


@pytest.fixture(scope="module")
def emulated(committed, tmp_path_factory):
    """The committed project re-run under an emulated other platform."""
    repo, run = _copy(committed, tmp_path_factory.mktemp("emulated") / "project")
    run(sys.executable, "-m", "dvc", "repro", "--force", **EMULATED)
    return repo


@pytest.mark.slow
def test_the_noise_record_measures_each_metric_over_the_seeds(committed):
    noise = json.loads((committed / "metrics/noise.json").read_text())
    accuracy = noise["metrics"]["metrics/test.json"]["accuracy"]
    assert noise["seeds"] == [42, 7, 8] and len(accuracy["values"]) == 3
    assert accuracy["min"] <= accuracy["mean"] <= accuracy["max"]
    assert noise["params"]["epochs"] == 2 and "seed" not in noise["params"]
    # the default seed's queued twin is the committed run: the same bits
    committed_accuracy = json.loads((committed / "metrics/test.json").read_text())["accuracy"]
    assert accuracy["values"][0] == committed_accuracy
    emulated = noise["emulated_platforms"][0]
    assert emulated["environment"] == EMULATED
    # the native run's variables (OPENBLAS_CORETYPE where the machine sets one), and the emulation
    native_environment = noise["platform"]["environment"]
    assert emulated["platform_changes"]["environment"] == native_environment | EMULATED


@pytest.mark.slow
def test_a_run_on_the_same_platform_must_reproduce_exactly(committed, tmp_path):
    _, run = _copy(committed, tmp_path / "same")
    run(sys.executable, "-m", "dvc", "repro", "--force")
    result = _check(run)
    assert result.returncode == 0, result.stderr
    assert "mode: same platform" in result.stdout
    assert "within the measured noise" not in result.stdout


@pytest.mark.slow
def test_a_run_on_another_platform_passes_within_the_measured_noise(emulated, tmp_path):
    _, run = _copy(emulated, tmp_path / "other")
    result = _check(run)
    assert result.returncode == 0, result.stderr
    assert "mode: another platform" in result.stdout
    assert "environment.ONEDNN_MAX_CPU_ISA: None -> AVX" in result.stdout
    assert "within the measured noise" in result.stdout


def _commit_forged(repo: Path, run, path: str, change, update_lock: bool) -> None:
    """Commit `path` changed by `change` (optionally with dvc.lock's md5 to match), keep the run."""
    reproduced, reproduced_lock = (repo / path).read_bytes(), (repo / "dvc.lock").read_bytes()
    run("git", "checkout", "-q", "HEAD", "--", path, "dvc.lock")
    metrics = json.loads((repo / path).read_text())
    change(metrics)
    forged = (json.dumps(metrics, indent=2) + "\n").encode()
    (repo / path).write_bytes(forged)
    if update_lock:
        lock = yaml.safe_load((repo / "dvc.lock").read_text())
        for stage in lock["stages"].values():
            for entry in stage.get("outs", []) + stage.get("deps", []):
                if entry["path"] == path:
                    entry["md5"], entry["size"] = hashlib.md5(forged).hexdigest(), len(forged)
        (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    run("git", "commit", "-qm", f"forged {path}", "--", path, "dvc.lock")
    (repo / path).write_bytes(reproduced)
    (repo / "dvc.lock").write_bytes(reproduced_lock)


@pytest.mark.slow
def test_a_model_metric_beyond_the_tolerance_fails_on_another_platform(emulated, tmp_path):
    repo, run = _copy(emulated, tmp_path / "moved")
    noise = json.loads((repo / "metrics/noise.json").read_text())
    log_loss = noise["metrics"]["metrics/test.json"]["log_loss"]
    beyond = 2 * tolerance(log_loss["std"], len(log_loss["values"])) + 0.01

    def move(metrics):
        metrics["log_loss"] = round(metrics["log_loss"] + beyond, 6)

    _commit_forged(repo, run, "metrics/test.json", move, update_lock=True)
    result = _check(run)
    assert result.returncode == 1
    assert "mode: another platform" in result.stderr
    assert "metrics/test.json: log_loss" in result.stderr
    assert "beyond the tolerance" in result.stderr


@pytest.mark.slow
def test_a_hand_edited_metric_fails_even_within_the_tolerance(emulated, tmp_path):
    repo, run = _copy(emulated, tmp_path / "edited")

    def nudge(metrics):
        metrics["roc_auc"] = round(metrics["roc_auc"] + 1e-6, 6)

    _commit_forged(repo, run, "metrics/test.json", nudge, update_lock=False)
    result = _check(run)
    assert result.returncode == 1
    assert "metrics/test.json at HEAD is not the file its run wrote" in result.stderr


@pytest.mark.slow
def test_a_changed_dependency_fails_on_another_platform(emulated, tmp_path):
    repo, run = _copy(emulated, tmp_path / "stale")
    with (repo / EXPORT_CODE).open("a") as source:
        source.write("# changed without re-running the pipeline\n")
    run("git", "commit", "-qm", "code changed, lock not", "--", EXPORT_CODE)
    run(sys.executable, "-m", "dvc", "repro", **EMULATED)  # only export reads export.py
    result = _check(run)
    assert result.returncode == 1
    assert "does not match what this commit's code produces (stages: export" in result.stderr
    assert EXPORT_CODE in result.stderr


@pytest.mark.slow
def test_the_check_refuses_a_work_tree_that_is_not_a_finished_run(committed, tmp_path):
    repo, run = _copy(committed, tmp_path / "unfinished")
    (repo / "params.yaml").write_text(
        (repo / "params.yaml").read_text().replace("epochs: 2", "epochs: 3")
    )
    result = _check(run)
    assert result.returncode == 2
    assert "is not a finished run" in result.stderr and "run `dvc repro` first" in result.stderr


def test_the_records_the_proof_reads_are_the_files_dvc_yaml_writes():
    from sentiment.proof import records

    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"].values()

    def paths(kind: str) -> set[str]:
        return {
            next(iter(out)) if isinstance(out, dict) else out
            for s in stages
            for out in s.get(kind, [])
        }

    top_level = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["metrics"]
    assert set(records.METRICS_FILES) == paths("metrics") | set(top_level)
    assert set(top_level) <= paths("outs")  # each is a stage's output
    assert records.PLATFORM_FILE in paths("outs")
    assert (PROJECT_ROOT / records.NOISE_FILE).is_file()  # measured and committed, no stage's


def test_another_platform_may_stop_an_epoch_earlier_or_later():
    from sentiment.proof.reproduction import Verdict, compare_metrics

    train = "metrics/train/metrics.json"
    same = {"mean": 3.0, "std": 0.0, "values": [3, 3, 3, 3]}  # every seed kept epoch 3
    noise = {"metrics": {train: {"early_stopping.best_epoch": same, "step": same}}}

    def check(best_epoch: int, step: int) -> Verdict:
        changes = {
            train: {
                "early_stopping.best_epoch": {"old": 3, "new": best_epoch},
                "step": {"old": 3, "new": step},
            }
        }
        verdict = Verdict(same_platform=False)
        compare_metrics(changes, {train}, noise, verdict)
        return verdict

    assert check(4, 2).failures == []
    assert len(check(4, 2).within_tolerance) == 2
    failures = check(5, 3).failures
    assert failures == [f"{train}: early_stopping.best_epoch 3 -> 5, beyond the tolerance 1"]
    # on the same platform, or in a file that does not train, an epoch count must be equal
    verdict = Verdict(same_platform=True)
    compare_metrics({train: {"step": {"old": 3, "new": 4}}}, set(), None, verdict)
    assert verdict.failures == [f"{train}: step 3 -> 4 (must be equal)"]
