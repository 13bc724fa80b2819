"""Throughput and peak memory of `sentiment predict` as its input grows.

Usage:
  sentiment benchmark predict --model models/export --reviews data/raw/test.jsonl \\
      [--sizes 1000 10000 100000] [--batch-size 512]

For each size it writes that many reviews (the given ones repeated in order) to a temporary
.jsonl file, runs `sentiment predict --file` on it in a fresh process and reads its
output as it comes. One line per size: when the first result arrived, the whole run's wall time
and reviews per second (start-up, the checking pass and scoring), the scoring rate from the first
result to the last, and the process's peak resident memory; last one JSON line with all of it.
A --batch-size at least the largest size scores everything in one call, as predict once did.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from sentiment.classifier.serving.predict import DEFAULT_BATCH_SIZE, positive_int, review_source
from sentiment.errors import PipelineError
from sentiment.measurement.processes import run_measured

DEFAULT_SIZES = (1_000, 10_000, 100_000)


@dataclass
class PredictRun:
    """What one predict process did on one input size."""

    reviews: int
    first_result_s: float
    wall_s: float
    reviews_per_s: float
    scoring_reviews_per_s: float  # first result to last, start-up excluded; 0 for one batch
    peak_rss_mb: float


def write_repeated(reviews: list[str], count: int, path: Path) -> None:
    """count reviews as JSON lines, the given ones repeated in order."""
    with path.open("w", encoding="utf-8") as file:
        for text in itertools.islice(itertools.cycle(reviews), count):
            file.write(json.dumps({"review": text}) + "\n")


def measure_predict(model: Path, reviews_file: Path, count: int, batch_size: int) -> PredictRun:
    """Run predict on a file in a fresh process, timing its output and taking its peak RSS."""
    command = [sys.executable, "-m", "sentiment", "predict", "--model", str(model)]
    command += ["--file", str(reviews_file), "--batch-size", str(batch_size)]
    arrivals: list[float] = []  # when each line came: not at EOF, TensorFlow takes a while to exit
    started = time.perf_counter()
    run = run_measured(command, on_line=lambda _: arrivals.append(time.perf_counter()))
    if run.exit_status != 0 or len(arrivals) != count:
        raise PipelineError(
            f"predict failed on {count:,} reviews (exit status {run.exit_status}, "
            f"{len(arrivals):,} lines): {run.stderr.strip()[-500:] or 'no message'}"
        )
    first_result, last_result = arrivals[0], arrivals[-1]
    first_batch = min(batch_size, count)
    scoring_s = last_result - first_result
    return PredictRun(
        reviews=count,
        first_result_s=round(first_result - started, 2),
        wall_s=round(last_result - started, 2),
        reviews_per_s=round(count / (last_result - started)),
        scoring_reviews_per_s=round((count - first_batch) / scoring_s) if scoring_s else 0,
        peak_rss_mb=round(run.peak_rss_mb),
    )


def benchmark(
    model: Path, reviews: list[str], sizes: Iterable[int], batch_size: int
) -> list[PredictRun]:
    """One fresh predict process per size, smallest first."""
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for size in sorted(sizes):
            reviews_file = Path(folder) / f"reviews_{size}.jsonl"
            write_repeated(reviews, size, reviews_file)
            runs.append(measure_predict(model, reviews_file, size, batch_size))
            reviews_file.unlink()
    return runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """benchmark predict's command line."""
    parser.add_argument("--model", type=Path, default=Path("models/export"))
    parser.add_argument(
        "--reviews", type=Path, required=True, help="real reviews to repeat (.jsonl or .txt)"
    )
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)


def run(args: argparse.Namespace) -> None:
    """One line per size, then one JSON line of them all."""
    if not args.model.exists():
        raise PipelineError(f"{args.model} does not exist: run `dvc repro export` first")
    reviews = list(review_source([], args.reviews, sys.stdin.buffer)())
    if not reviews:
        raise PipelineError(f"{args.reviews} holds no reviews: give real reviews to repeat")
    print(f"predict --batch-size {args.batch_size} with {args.model}, reviews from {args.reviews}")
    header = "reviews  first result s  wall s  reviews/s  scoring reviews/s  peak RSS MB"
    print(header)
    runs = []
    for measured in benchmark(args.model, reviews, args.sizes, args.batch_size):
        runs.append(asdict(measured))
        print(
            f"{measured.reviews:>7,}  {measured.first_result_s:>13.1f}  {measured.wall_s:>6.1f}  "
            f"{measured.reviews_per_s:>9,}  {measured.scoring_reviews_per_s:>17,}  "
            f"{measured.peak_rss_mb:>11,}",
            flush=True,
        )
    print(json.dumps({"model": str(args.model), "batch_size": args.batch_size, "runs": runs}))
