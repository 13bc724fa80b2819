"""Training past one device: tf.distribute strategies run for real on CPU, and TF_CONFIG."""

import json
import socket
import subprocess
import sys

import pytest
import yaml

from sentiment.classifier.training.distribution import cluster_config, is_chief, strategy_scope
from sentiment.errors import PipelineError
from tests.conftest import PROJECT_ROOT, SMALL_PARAMS, dvc, make_project, project_env

DVC_YAML = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())


def _tf_config(task_type: str, index: int, cluster: dict) -> dict[str, str]:
    return {
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
    }


TWO_WORKERS = {"worker": ["localhost:1", "localhost:2"]}


def test_a_process_without_a_cluster_is_its_own_chief():
    assert cluster_config({}) is None
    assert is_chief({})


def test_worker_zero_writes_the_results_unless_the_cluster_has_a_chief():
    assert is_chief(_tf_config("worker", 0, TWO_WORKERS))
    assert not is_chief(_tf_config("worker", 1, TWO_WORKERS))
    with_chief = {"chief": ["localhost:3"], **TWO_WORKERS}
    assert is_chief(_tf_config("chief", 0, with_chief))
    assert not is_chief(_tf_config("worker", 0, with_chief))


@pytest.mark.parametrize(
    ("tf_config", "problem"),
    [
        ("{not json", "TF_CONFIG is not JSON"),
        ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG needs a cluster and a task"),
        ('["worker"]', "TF_CONFIG needs a cluster and a task"),
        (
            '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}',
            "is not one of its cluster's members",
        ),
    ],
)
def test_a_bad_tf_config_is_refused_with_an_example_of_a_good_one(tf_config, problem):
    with pytest.raises(PipelineError, match=problem) as error:
        cluster_config({"TF_CONFIG": tf_config})
    assert '"task": {"type": "worker", "index": 0}' in str(error.value)


def test_multi_worker_without_a_cluster_says_to_set_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(PipelineError, match="distribute: multi_worker needs TF_CONFIG"):
        strategy_scope("multi_worker")


# Runs in its own process: logical devices must be set before TensorFlow starts.
MIRRORED_RUN = """
import json, sys, tempfile
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from sentiment.classifier.data.synthetic import make_synthetic
from sentiment.classifier.data.preprocessing import prepare_splits
from sentiment.classifier.model.inference import predict_probabilities
from sentiment.classifier.training.fit import train_model
from tests.conftest import small_configs

p = json.loads(sys.argv[1])
splits, vocabulary = prepare_splits(
    make_synthetic(p["synthetic_reviews"]), vocab_size=p["vocab_size"],
    max_length=p["max_length"], padding="pre", truncating="pre", validation_split=0.2, seed=42,
)
results = {}
for distribute in ("mirrored", "none"):
    model_config, training_config = small_configs(len(vocabulary) + 2, distribute=distribute)
    model, history, _ = train_model(
        train=splits["train"], validation=splits["validation"], model_config=model_config,
        training_config=training_config, verbose=0,
    )
    replicas = model.distribute_strategy.num_replicas_in_sync
    # evaluate as the pipeline does: the saved model, loaded in a process without a strategy
    path = tempfile.mkdtemp() + "/model.keras"
    model.save(path)
    probabilities = predict_probabilities(keras.saving.load_model(path), splits["test"].token_ids)
    accuracy = float(((probabilities >= 0.5) == splits["test"].labels).mean())
    results[distribute] = {"replicas": replicas, "test_accuracy": accuracy}
print(json.dumps(results))
"""


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_trains_as_well_as_one_device():
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_RUN, json.dumps(SMALL_PARAMS)],
        cwd=PROJECT_ROOT,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results["mirrored"]["replicas"] == 2 and results["none"]["replicas"] == 1
    # the same global batches, split over two replicas: the same quality, not the same bits
    assert results["none"]["test_accuracy"] > 0.95
    assert results["mirrored"]["test_accuracy"] > 0.95
    assert abs(results["mirrored"]["test_accuracy"] - results["none"]["test_accuracy"]) < 0.02


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_workers_on_localhost_train_one_run_and_the_chief_writes_it(tmp_path):
    repo, run = make_project(tmp_path / "project", distribute="multi_worker", epochs=3)
    dvc(run, "repro", "word_vectors")
    cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
    command = [sys.executable, "-m", *DVC_YAML["stages"]["train"]["cmd"].split()[2:]]
    workers = [
        subprocess.Popen(
            command,
            cwd=repo,
            env=project_env() | _tf_config("worker", index, cluster),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in (0, 1)
    ]
    try:
        logs = [worker.communicate(timeout=300)[1] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [worker.returncode for worker in workers] == [0, 0], "\n".join(logs)[-4000:]
    assert "not its chief" in logs[1] and "not its chief" not in logs[0]
    summaries = [line for log in logs for line in log.splitlines() if line.startswith("train: ")]
    # one training: every step's gradients were summed over both workers, so they agree
    val_accuracies = {line.rsplit("val_accuracy ", 1)[1] for line in summaries if "val_acc" in line}
    assert len(val_accuracies) == 1
    assert (repo / "models/model.keras").exists()
    assert (repo / "models/test_scores.npy").exists()  # the chief's, once
    history = json.loads((repo / "metrics/train/metrics.json").read_text())
    assert history["step"] == 2  # DVCLive counts epochs from 0: all 3 ran
    assert 0.5 < history["eval"]["accuracy"] <= 1.0
