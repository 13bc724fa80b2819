"""How close training runs to the machine's arithmetic limit: FLOPs per review, GFLOP/s reached.

Usage:
  sentiment benchmark flops --params params.yaml --data data/processed [--reviews-per-second R]

At the sizes of the tuned configurations, training is arithmetic-bound: nearly all of its work is
the recurrent layers' matrix products, one per direction and time step. This counts those FLOPs
per training review (from the params and the reviews' real lengths), converts a measured training
speed into GFLOP/s, and measures what this machine's matrix multiply reaches (TensorFlow's, one
on all cores) at the recurrent layer's own shape and at a large square one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sentiment.console import log
from sentiment.params import load_params

# Matrix products per recurrent step: LSTM 4 gates, GRU 3, a simple RNN 1.
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
# A training step's backward pass costs about twice its forward pass (the gradient for the
# inputs and for the weights are each one product of the forward's size).
BACKWARD_PER_FORWARD = 2.0


def passes_per_step(adversarial: float, virtual_adversarial: float) -> float:
    """Forward-pass equivalents of one training step, counted as above.

    Plain: forward + backward (3). Adversarial adds the gradient for the embeddings (a second
    backward, 2) and the perturbed forward + backward (3); virtual adversarial adds the random
    direction's forward + backward for the direction (3) and the moved forward + backward (3).
    """
    passes = 1.0 + BACKWARD_PER_FORWARD
    if adversarial:
        passes += BACKWARD_PER_FORWARD + 1.0 + BACKWARD_PER_FORWARD
    if virtual_adversarial:
        passes += 2 * (1.0 + BACKWARD_PER_FORWARD)
    return passes


def forward_flops_per_word(cell: str, embedding_dim: int, units: int, directions: int) -> float:
    """FLOPs of the recurrent layers' forward pass for one word (2 per multiply-add)."""
    return directions * 2.0 * GATES[cell] * units * (embedding_dim + units)


def training_flops_per_review(params, mean_words: float) -> float:
    """Recurrent-layer FLOPs to train on one review of `mean_words` words, passes included."""
    directions = 2 if params.bidirectional else 1
    per_word = forward_flops_per_word(params.cell, params.embedding_dim, params.units, directions)
    return per_word * mean_words * passes_per_step(params.adversarial, params.virtual_adversarial)


def matmul_gflops(rows: int, inner: int, columns: int, seconds: float = 2.0) -> float:
    """GFLOP/s TensorFlow's float32 matmul sustains at this shape (median of 5 timed runs)."""
    import tensorflow as tf

    a = tf.random.normal((rows, inner))
    b = tf.random.normal((inner, columns))
    product = tf.function(lambda: tf.matmul(a, b))
    product()  # warm up (trace, allocate)
    start, repeats = time.perf_counter(), 0
    while time.perf_counter() - start < seconds / 5:
        product().numpy()
        repeats += 1
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            product().numpy()
        timings.append((time.perf_counter() - start) / repeats)
    return 2.0 * rows * inner * columns / float(np.median(timings)) / 1e9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """benchmark flops' command line."""
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output folder")
    parser.add_argument("--reviews-per-second", type=float, help="a measured training speed")


def run(args: argparse.Namespace) -> None:
    """FLOPs per training review, the GFLOP/s a measured speed means, and the matmul rates."""
    params = load_params(args.params)
    from sentiment.classifier.data.splits import load_split

    words = float(np.mean(load_split(args.data / "train.npz").lengths.clip(max=params.max_length)))
    flops = training_flops_per_review(params, words)
    log(f"recurrent FLOPs per training review: {flops / 1e9:.3f} GFLOP ({words:.0f} words)")
    if args.reviews_per_second:
        log(
            f"training at {args.reviews_per_second:.1f} reviews/s: "
            f"{flops * args.reviews_per_second / 1e9:.1f} GFLOP/s"
        )
    shapes = {
        "the recurrent step's product": (
            params.batch_size,
            params.embedding_dim + params.units,
            GATES[params.cell] * params.units,
        ),
        "a large square product": (2048, 2048, 2048),
    }
    for name, shape in shapes.items():
        log(
            f"matmul {shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]} ({name}): "
            f"{matmul_gflops(*shape):.1f} GFLOP/s on all cores"
        )
