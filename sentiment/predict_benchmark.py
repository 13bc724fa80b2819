"""Throughput and peak memory of `sentiment.predict` as its input grows.

Usage:
  python -m sentiment.predict_benchmark --model models/export --reviews data/raw/test.jsonl \\
      [--sizes 1000 10000 100000] [--batch-size 512]

For each size it writes that many reviews (the given ones repeated in order) to a temporary
.jsonl file, runs `python -m sentiment.predict --file` on it in a fresh process and reads its
output as it comes. One line per size: when the first result arrived, the whole run's wall time
and reviews per second (start-up, the checking pass and scoring), the scoring rate from the first
result to the last, and the process's peak resident memory; last one JSON line with all of it.
A --batch-size at least the largest size scores everything in one call, as predict once did.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from sentiment.cli import run_stage
from sentiment.errors import PipelineError
from sentiment.predict import DEFAULT_BATCH_SIZE, positive_int, review_source

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
    command = [sys.executable, "-m", "sentiment.predict", "--model", str(model)]
    command += ["--file", str(reviews_file), "--batch-size", str(batch_size)]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        first_result = last_result = None
        lines = 0
        for _ in process.stdout:  # type: ignore[union-attr]
            last_result = time.perf_counter()  # not at EOF: TensorFlow takes a while to exit
            first_result = first_result or last_result
            lines += 1
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if process.returncode != 0 or lines != count:
        raise PipelineError(
            f"predict failed on {count:,} reviews (exit status {process.returncode}, {lines:,} "
            f"lines): {stderr.strip()[-500:] or 'no message'}"
        )
    first_batch = min(batch_size, count)
    scoring_s = last_result - first_result
    return PredictRun(
        reviews=count,
        first_result_s=round(first_result - started, 2),
        wall_s=round(last_result - started, 2),
        reviews_per_s=round(count / (last_result - started)),
        scoring_reviews_per_s=round((count - first_batch) / scoring_s) if scoring_s else 0,
        peak_rss_mb=round(usage.ru_maxrss / 1024),  # ru_maxrss is in KiB on Linux
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("models/export"))
    parser.add_argument(
        "--reviews", type=Path, required=True, help="real reviews to repeat (.jsonl or .txt)"
    )
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args()
    if not args.model.exists():
        raise PipelineError(f"{args.model} does not exist: run `dvc repro export` first")
    reviews = list(review_source([], args.reviews, sys.stdin.buffer)())
    if not reviews:
        raise PipelineError(f"{args.reviews} holds no reviews: give real reviews to repeat")
    print(f"predict --batch-size {args.batch_size} with {args.model}, reviews from {args.reviews}")
    header = "reviews  first result s  wall s  reviews/s  scoring reviews/s  peak RSS MB"
    print(header)
    runs = []
    for run in benchmark(args.model, reviews, args.sizes, args.batch_size):
        runs.append(asdict(run))
        print(
            f"{run.reviews:>7,}  {run.first_result_s:>13.1f}  {run.wall_s:>6.1f}  "
            f"{run.reviews_per_s:>9,}  {run.scoring_reviews_per_s:>17,}  {run.peak_rss_mb:>11,}",
            flush=True,
        )
    print(json.dumps({"model": str(args.model), "batch_size": args.batch_size, "runs": runs}))


if __name__ == "__main__":
    run_stage(main)
