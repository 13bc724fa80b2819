"""Time and peak memory of the data stages (download, preprocess) as a user's data file grows.

Usage:
  sentiment benchmark data [--rows 100000 1000000] [--labels 3]

For each size it writes a CSV of that many generated reviews (graded synthetic text, each row
numbered so that every text is distinct) into a fresh copy of this project, then runs the
download and preprocess stages on it as `dvc repro` would, each in a process of its own. One line
per stage and size: wall time, peak resident memory, and both per 100,000 rows; then how each
grew from the smallest size to the largest beside how the rows grew, and last one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

from sentiment.classifier.data.synthetic import grade_names, make_synthetic_graded
from sentiment.errors import PipelineError
from sentiment.measurement.processes import run_measured
from sentiment.proof.project_copy import copy_project, project_env, write_params

DEFAULT_ROWS = (100_000, 1_000_000)
STAGES = {
    "download": ["--output", "data/raw"],
    "unlabelled": ["--reviews", "data/raw", "--output", "data/unlabelled"],
    "preprocess": [
        "--reviews",
        "data/raw",
        "--unlabelled",
        "data/unlabelled",
        "--output",
        "data/processed",
        "--words",
        "data/words",
        "--statistics",
        "metrics/data.json",
    ],
}
TEMPLATE_REVIEWS = 5_000  # generated once and numbered to make the rows


def write_reviews_csv(path: Path, rows: int, labels: int) -> None:
    """`rows` distinct labelled reviews as a CSV with columns text and label."""
    templates = make_synthetic_graded(TEMPLATE_REVIEWS, labels)["train"]
    names = grade_names(labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for row in range(rows):
            text, label = templates[row % TEMPLATE_REVIEWS]
            writer.writerow([f"{text} review {row}", names[label]])


def measure_size(workspace: Path, rows: int, labels: int) -> list[dict]:
    """Run the data stages on `rows` generated reviews; one measurement per stage."""
    project = copy_project(workspace)
    write_reviews_csv(project / "data/reviews.csv", rows, labels)
    write_params(project / "params.yaml", dataset="data/reviews.csv")
    measured = []
    for stage, arguments in STAGES.items():
        command = [sys.executable, "-m", f"stages.{stage}", *arguments]
        run = run_measured(command, cwd=project, env=project_env())
        if run.exit_status != 0:
            tail = "\n".join(run.stderr.strip().splitlines()[-5:])
            raise PipelineError(f"stage {stage} failed on {rows:,} rows: {tail}")
        measured.append(
            {
                "rows": rows,
                "stage": stage,
                "wall_s": round(run.wall_s, 1),
                "peak_rss_mb": round(run.peak_rss_mb),
            }
        )
    return measured


def growth(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Per stage: how wall time and peak memory grew from the smallest size to the largest."""
    sizes = sorted({run["rows"] for run in runs})
    found = {}
    for stage in STAGES:
        small, large = (
            next(r for r in runs if r["stage"] == stage and r["rows"] == size)
            for size in (sizes[0], sizes[-1])
        )
        found[stage] = {
            "rows": round(sizes[-1] / sizes[0], 2),
            "wall_time": round(large["wall_s"] / max(small["wall_s"], 1e-9), 2),
            "peak_memory": round(large["peak_rss_mb"] / max(small["peak_rss_mb"], 1e-9), 2),
        }
    return found


def positive_rows(value: str) -> int:
    """argparse type: a number of rows, at least 100 (a stratified split needs some)."""
    if not value.isdigit() or int(value) < 100:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 100, got {value!r}")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """benchmark data's command line."""
    parser.add_argument("--rows", type=positive_rows, nargs="+", default=list(DEFAULT_ROWS))
    parser.add_argument("--labels", type=int, default=3, help="labels of the generated reviews")


def run(args: argparse.Namespace) -> None:
    """One line per stage and size, the growth, then one JSON line."""
    if not 2 <= args.labels <= 10:
        raise PipelineError(f"--labels must be between 2 and 10, got {args.labels}")
    print("rows        stage       wall s  peak RSS MB  s per 100k rows  MB per 100k rows")
    runs = []
    with tempfile.TemporaryDirectory(prefix="data-benchmark-") as scratch:
        for rows in sorted(args.rows):
            for measured in measure_size(Path(scratch) / f"rows-{rows}", rows, args.labels):
                runs.append(measured)
                per = 100_000 / rows
                print(
                    f"{rows:>10,}  {measured['stage']:<10}  {measured['wall_s']:>6.1f}  "
                    f"{measured['peak_rss_mb']:>11,}  {measured['wall_s'] * per:>15.1f}  "
                    f"{measured['peak_rss_mb'] * per:>16.0f}",
                    flush=True,
                )
    grown = growth(runs) if len(args.rows) > 1 else {}
    for stage, ratios in grown.items():
        print(
            f"{stage}: rows x{ratios['rows']:g}, wall time x{ratios['wall_time']:g}, "
            f"peak memory x{ratios['peak_memory']:g}"
        )
    print(json.dumps({"labels": args.labels, "runs": runs, "growth": grown}))
