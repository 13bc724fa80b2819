"""Training past one device: the tf.distribute strategy a `distribute` param names.

batch_size is always the global batch: each step reads batch_size reviews, split evenly over
every replica (every GPU of every worker), and the replicas' gradients are summed into one
update. Steps per epoch, the learning rate and the results' meaning stay the same whatever the
strategy; to give each of N replicas the batch one device had, multiply batch_size by N.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import tensorflow as tf

from sentiment.errors import PipelineError
from sentiment.params import DISTRIBUTIONS

TF_CONFIG_HELP = (
    'set TF_CONFIG on every worker, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}} (docs/scaling-out.md)'
)


def cluster_config(environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """TF_CONFIG, checked: None when unset, else its cluster and this process's task."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError:
        raise PipelineError(f"TF_CONFIG is not JSON: {TF_CONFIG_HELP}") from None
    if not isinstance(config, dict):
        config = {}
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise PipelineError(f"TF_CONFIG needs a cluster and a task: {TF_CONFIG_HELP}")
    members = cluster.get(task.get("type"))
    index = task.get("index")
    if not isinstance(members, list) or not isinstance(index, int) or not 0 <= index < len(members):
        raise PipelineError(
            f"TF_CONFIG's task {task!r} is not one of its cluster's members: {TF_CONFIG_HELP}"
        )
    return config


def is_chief(environ: dict[str, str] | None = None) -> bool:
    """Whether this process writes the results: the chief, or worker 0 of a cluster without one.

    The other workers train alongside it (their gradients are part of every step) and discard
    their copies, which are the same model.
    """
    config = cluster_config(environ)
    if config is None:
        return True
    task_type, index = config["task"]["type"], config["task"]["index"]
    if "chief" in config["cluster"]:
        return task_type == "chief"
    return task_type == "worker" and index == 0


def strategy_scope(distribute: str) -> contextlib.AbstractContextManager:
    """The scope to build and compile the model in; create it before TensorFlow runs any op.

    "none" trains on the default device (the pipeline's bitwise-deterministic CPU path);
    "mirrored" keeps a replica on every local GPU, or on every logical CPU when there is none;
    "multi_worker" joins the cluster TF_CONFIG describes, with every local GPU of each worker.
    """
    if distribute == "none":
        return contextlib.nullcontext()
    if distribute == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices]).scope()
    if distribute == "multi_worker":
        if cluster_config() is None:
            raise PipelineError(f"distribute: multi_worker needs TF_CONFIG: {TF_CONFIG_HELP}")
        return tf.distribute.MultiWorkerMirroredStrategy().scope()
    raise PipelineError(f"distribute {distribute!r} is not one of {', '.join(DISTRIBUTIONS)}")
