"""Where a training step's time goes: a TensorFlow profile of a few steps of a configuration.

Usage:
  sentiment benchmark steps --params params.yaml --data data/processed [--steps 20] \
      [--warm-up 5] [--kernel-gradient] [--output FILE]

Trains the configuration exactly as the train stage does (same model, optimizer, batches, one
thread per op), lets the first --warm-up steps pass (tracing, allocation), profiles the next
--steps with TensorFlow's profiler and reads its trace: each op's time on the compute threads,
grouped into the recurrent kernels, matrix products outside them, gathers and scatters (the
embedding lookup and its gradient, moving masked steps), and every other op; the input
pipeline's busy time; and the step's wall time, of which the rest is the executor's own
overhead and idle threads.

Beside it, measured in the same run: the matrix-multiply rate at the recurrent step's own shape
and at a large square one, one thread per op as training runs them. The recurrent kernels'
arithmetic (the recurrent FLOPs of the profiled batches, counted as `benchmark flops` counts
them) at the recurrent shape's rate is their matrix work; the rest of their time is per-time-step
latency (gate element-wise work, state copies, the loop). From the step time it projects the
whole training run (epochs x batches, validation excluded) and the least time the arithmetic
needs at the large product's rate.

The first embedding values do not change a step's cost: with embedding_init word2vec the
profile starts from a seeded random table of the same shape. An ensemble is profiled as one
member (its training is members x one member's). --kernel-gradient profiles the same steps with
every LSTM's gradient on TensorFlow's BlockLSTMGradV2 kernel, for comparison with the looped
gradient that wide layers train with.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from sentiment.console import log
from sentiment.errors import PipelineError
from sentiment.files import write_json
from sentiment.params import load_params

# An op's event on a compute thread: "scope/name:OpType".
OP_EVENT = re.compile(r"[^:]+:(?P<type>[A-Za-z0-9_]+)")
GROUPS = {
    "recurrent kernels": re.compile(r"BlockLSTM"),
    "matrix products": re.compile(r"MatMul|Einsum|Conv"),
    "gathers and scatters": re.compile(r"Gather|Scatter|SegmentSum|Embedding"),
}
OTHER = "other ops"
RECURRENCE = ("recurrent kernels", "matrix products")
# Ops inside a graph loop: the recurrence's time steps (a looped gradient, Keras' own loop).
IN_LOOP = "recurrent loop (graph loop steps)"
IN_LOOP_NAME = re.compile(r"/while(_\d+)?/")
LOOPED = 2000  # products in the loop that measures the recurrent shape's rate


def looped_matmul_gflops(rows: int, inner: int, columns: int) -> float:
    """GFLOP/s of LOOPED products of this shape one after another in one graph loop, as a
    recurrent layer's time steps run them (median of 5): the small product's own rate, without
    a Python call per product."""
    import tensorflow as tf

    a, b = tf.random.normal((rows, inner)), tf.random.normal((inner, columns))

    @tf.function
    def products():
        def body(index, total):
            return index + 1, total + tf.matmul(a, b)

        return tf.while_loop(lambda i, _: i < LOOPED, body, (0, tf.zeros((rows, columns))))[1]

    products().numpy()  # trace
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        products().numpy()
        timings.append(time.perf_counter() - start)
    return 2.0 * rows * inner * columns * LOOPED / float(np.median(timings)) / 1e9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """benchmark steps' command line."""
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument("--steps", type=int, default=20, help="steps profiled (default 20)")
    parser.add_argument("--warm-up", type=int, default=5, help="steps run first (default 5)")
    parser.add_argument(
        "--kernel-gradient",
        action="store_true",
        help="run every LSTM's gradient as BlockLSTMGradV2, the looped gradient off (to compare)",
    )
    parser.add_argument("--output", type=Path, help="also write the summary JSON here")


def group_of(op_name: str, op_type: str) -> str:
    if IN_LOOP_NAME.search(op_name):
        return IN_LOOP
    return next((name for name, pattern in GROUPS.items() if pattern.search(op_type)), OTHER)


def read_trace(folder: Path) -> dict:
    """Op time by type on the compute threads, and the input pipeline's busy time, in seconds."""
    from sentiment.classifier.model.private_apis import read_profiler_trace

    traces = sorted(folder.rglob("*.xplane.pb"))
    if not traces:
        raise PipelineError(f"TensorFlow's profiler wrote no trace under {folder}")
    space = read_profiler_trace(traces[-1].read_bytes())
    ops, input_pipeline = Counter(), 0.0  # (group, op type) -> seconds
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                seconds = event.duration_ps / 1e12
                if line.name.startswith("tf_Compute") or line.name.startswith("tf_inter_op"):
                    matched = OP_EVENT.fullmatch(name)
                    if matched and "::" not in name:
                        ops[group_of(name, matched["type"]), matched["type"]] += seconds
                elif line.name.startswith("tf_data_iterator_get_next") and name == "Iterator::Root":
                    input_pipeline += seconds
    return {"ops": ops, "input_pipeline_s": input_pipeline}


def profile_steps(
    params, data: Path, steps: int, warm_up: int, kernel_gradient: bool = False
) -> dict:
    """Train warm_up + steps steps of the configuration; time and profile the last `steps`."""
    from sentiment.tensorflow_start import run_ops_single_threaded

    run_ops_single_threaded()
    if kernel_gradient:
        from sentiment.classifier.model import fast_layers

        fast_layers.LOOPED_GRADIENT_UNITS = sys.maxsize

    from sentiment.classifier.data.splits import Split, embedding_rows, load_labels, load_split
    from sentiment.params import ModelConfig, TrainingConfig

    classes = len(load_labels(data))
    model_config = ModelConfig.from_params(params, vocab_size=embedding_rows(data), classes=classes)
    training_config = dataclasses.replace(TrainingConfig.from_params(params), ensemble=1, epochs=1)
    train = load_split(data / "train.npz")
    batches_per_epoch = math.ceil(len(train) / training_config.batch_size)
    if warm_up + steps > batches_per_epoch:
        raise PipelineError(
            f"--warm-up {warm_up} + --steps {steps} is more than an epoch's "
            f"{batches_per_epoch} batches; profile fewer steps"
        )
    validation = load_split(data / "validation.npz")
    few = slice(training_config.batch_size)  # Keras validates once at the epoch's end
    validation = Split(validation.token_ids[few], validation.labels[few], validation.lengths[few])
    vectors = None
    if model_config.embedding_init == "word2vec":
        vectors = (
            np.random.default_rng(training_config.seed)
            .normal(0, 0.1, (model_config.vocab_size, model_config.embedding_dim))
            .astype(np.float32)
        )
    with tempfile.TemporaryDirectory(prefix="steps-profile-") as scratch:
        folder = Path(scratch)
        trace = _profiled_fit(
            folder, train, validation, model_config, training_config, vectors, warm_up, steps
        )
    lengths = _batch_lengths(train, training_config, model_config)
    profiled = lengths[warm_up : warm_up + steps]
    return {**trace, "epoch_lengths": lengths, "profiled_lengths": profiled}


def _profiled_fit(
    folder: Path, train, validation, model_config, training_config, vectors, warm_up, steps
) -> dict:
    """Fit until the profiled window has run; its wall time and the trace read back."""
    import keras
    import tensorflow as tf

    from sentiment.classifier.training.fit import train_model

    window: dict[str, float] = {}

    class Window(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == warm_up:
                tf.profiler.experimental.start(str(folder))
                window["start"] = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch == warm_up + steps - 1:
                window["wall_s"] = time.perf_counter() - window["start"]
                tf.profiler.experimental.stop()
                self.model.stop_training = True

    train_model(
        train=train,
        validation=validation,
        model_config=model_config,
        training_config=training_config,
        callbacks=[Window()],
        verbose=0,
        word_vectors=vectors,
    )
    return {"wall_s": window["wall_s"], **read_trace(folder)}


def _batch_lengths(train, training_config, model_config) -> list[int]:
    """The time steps each batch of the first epoch runs (cut to its longest review when the
    model skips padding), in training's order: the batches training's first epoch draws."""
    from sentiment.classifier.data.batching import length_batches

    width = train.token_ids.shape[1]
    if not model_config.mask_padding:
        return [width] * math.ceil(len(train) / training_config.batch_size)
    lengths = np.minimum(train.lengths, width)
    rng = np.random.default_rng([training_config.seed, 0])  # batch_dataset's first epoch
    batches = length_batches(lengths, training_config.batch_size, rng, by_length=True)
    return [max(int(lengths[rows].max()), 1) for rows in batches]


def run(args: argparse.Namespace) -> None:
    """Profile, then print the table and the projection; one JSON line last."""
    from sentiment.measurement.flops import (
        GATES,
        forward_flops_per_word,
        matmul_gflops,
        passes_per_step,
    )
    from sentiment.proof.platform_record import describe_platform

    params = load_params(args.params)
    if args.steps < 1 or args.warm_up < 1:
        raise PipelineError("--steps and --warm-up must be at least 1 (the first step traces)")
    profile = profile_steps(params, args.data, args.steps, args.warm_up, args.kernel_gradient)
    step_s = profile["wall_s"] / args.steps
    # Recurrent FLOPs of the profiled batches: each batch runs its own number of time steps.
    directions = 2 if params.bidirectional else 1
    per_word = forward_flops_per_word(params.cell, params.embedding_dim, params.units, directions)
    per_time_step = (
        per_word
        * params.batch_size
        * passes_per_step(params.adversarial, params.virtual_adversarial)
    )
    profiled, epoch = profile["profiled_lengths"], profile["epoch_lengths"]
    recurrent_flops = per_time_step * sum(profiled)
    shape = (
        params.batch_size,
        params.embedding_dim + params.units,
        GATES[params.cell] * params.units,
    )
    recurrent_rate = looped_matmul_gflops(*shape)
    square_rate = matmul_gflops(2048, 2048, 2048)
    groups: Counter = Counter()
    types: Counter = Counter()
    for (group, op_type), seconds in profile["ops"].items():
        groups[group] += seconds
        types[op_type] += seconds
    per_step = {name: seconds / args.steps for name, seconds in groups.items()}
    # The recurrence's op time: its kernels, its loop's steps, and the products outside them.
    recurrent_s = sum(per_step.get(name, 0.0) for name in (*RECURRENCE, IN_LOOP))
    # Its arithmetic at the best rate measured here, one op per core; the rest is latency.
    cores = os.cpu_count() or 1
    best_rate = max(recurrent_rate, square_rate) * 1e9 * cores
    recurrent_matrix_s = recurrent_flops / args.steps / best_rate
    # The whole run: every epoch's batches, each step's time in proportion to its time steps
    # (with early stopping, `epochs` is the ceiling: an upper bound on the run).
    epochs = params.epochs * params.ensemble
    projected_s = profile["wall_s"] / sum(profiled) * sum(epoch) * epochs
    least_s = per_time_step * sum(epoch) * epochs / best_rate
    summary = {
        "command": "sentiment benchmark steps "
        f"--params {args.params} --data {args.data} --steps {args.steps} --warm-up {args.warm_up}"
        + (" --kernel-gradient" if args.kernel_gradient else ""),
        "date": time.strftime("%Y-%m-%d"),
        "platform": describe_platform(),
        "configuration": {
            key: getattr(params, key)
            for key in (
                "max_length",
                "vocab_size",
                "embedding_dim",
                "cell",
                "units",
                "bidirectional",
                "merge_mode",
                "pooling",
                "batch_size",
                "epochs",
                "ensemble",
                "adversarial",
                "virtual_adversarial",
                "mask_padding",
            )
        },
        "gradient": "BlockLSTMGradV2 at every size" if args.kernel_gradient else "as trained",
        "steps": args.steps,
        "step_s": round(step_s, 5),
        "mean_time_steps": round(float(np.mean(profiled)), 1),
        "epoch_mean_time_steps": round(float(np.mean(epoch)), 1),
        "batches_per_epoch": len(epoch),
        "op_time_per_step_s": {name: round(value, 5) for name, value in per_step.items()},
        "op_types_per_step_s": {
            op: round(seconds / args.steps, 5) for op, seconds in types.most_common(15)
        },
        "op_threads_busy": round(sum(groups.values()) / profile["wall_s"], 2),
        "input_pipeline_per_step_s": round(profile["input_pipeline_s"] / args.steps, 5),
        "recurrent_flops_per_step": recurrent_flops / args.steps,
        "recurrent_op_time_per_step_s": round(recurrent_s, 5),
        "recurrent_matrix_work_per_step_s": round(recurrent_matrix_s, 5),
        "recurrent_latency_per_step_s": round(max(recurrent_s - recurrent_matrix_s, 0.0), 5),
        "achieved_gflops": round(recurrent_flops / profile["wall_s"] / 1e9, 1),
        "matmul_gflops": {
            f"{shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]}, {LOOPED} in a graph loop": round(
                recurrent_rate, 1
            ),
            "2048x2048 @ 2048x2048": round(square_rate, 1),
        },
        "projected_training_s": round(projected_s),
        "least_training_s_at_best_rate": round(least_s),
        "cores": cores,
    }
    _print_table(summary)
    if args.output:
        write_json(args.output, summary)
    print(json.dumps(summary))


def _print_table(summary: dict) -> None:
    step, ms = summary["step_s"], 1e3
    log(
        f"one training step: {step * ms:.1f} ms (batches of {summary['mean_time_steps']} time "
        f"steps); op threads busy {summary['op_threads_busy']:.2f} of the step's wall time"
    )
    log(f"{'where':<34} {'ms per step':>12} {'share of op time':>17}")
    total = sum(summary["op_time_per_step_s"].values())
    for name, seconds in sorted(summary["op_time_per_step_s"].items(), key=lambda i: -i[1]):
        log(f"{name:<34} {seconds * ms:>12.2f} {seconds / total:>16.0%}")
    pipeline = summary["input_pipeline_per_step_s"] * ms
    log(f"{'input pipeline (beside the step)':<34} {pipeline:>12.2f}")
    log(
        f"the recurrence's {summary['recurrent_op_time_per_step_s'] * ms:.1f} ms of op time: "
        f"{summary['recurrent_matrix_work_per_step_s'] * ms:.1f} ms of arithmetic at the best "
        f"rate measured here on {summary['cores']} cores, "
        f"{summary['recurrent_latency_per_step_s'] * ms:.1f} ms of step latency beyond it"
    )
    for shape, rate in summary["matmul_gflops"].items():
        log(f"matmul {shape}, one thread: {rate} GFLOP/s")
    log(f"training's recurrent arithmetic: {summary['achieved_gflops']} GFLOP/s")
    log(
        f"the whole training at this step time: {summary['projected_training_s'] / 60:.1f} min; "
        f"its arithmetic at the best rate on every core: "
        f"{summary['least_training_s_at_best_rate'] / 60:.1f} min"
    )
