"""Run a command that makes a result, and record it: what the docs quote must come from a record.

Usage:
  sentiment record NAME -- dvc exp run -S dataset=data/customer_reviews.csv
  sentiment record NAME -- dvc repro

Runs the command in the project's root; when it succeeds, writes metrics/records/NAME.json:
the command, the date, the commit, params.yaml, every metrics file and the data statistics the run
left in the workspace, the platform record of the run that trained, and each stage the command
ran with its wall time, start-up, CPU time and peak memory (the stages' own clocks).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import yaml

from sentiment.console import STAGE_TIMES_ENV, log, read_stage_times
from sentiment.errors import PipelineError
from sentiment.files import write_json
from sentiment.proof.records import DATA_METRICS, METRICS_FILES, PLATFORM_FILE, flatten
from sentiment.tools import DVC, tool_output

RECORDS = Path("metrics/records")


def record_of_workspace(
    root: Path, command: list[str], stage_times: list[dict] | None = None
) -> dict:
    """The record of the run whose outputs are in `root`'s workspace."""
    metrics = {}
    for path in (*METRICS_FILES, DATA_METRICS):
        if (root / path).exists():
            metrics[path] = flatten(json.loads((root / path).read_text()))
    if not metrics:
        raise PipelineError(f"no metrics in {root}: the command made no pipeline run to record")
    commit = (tool_output(["git", "rev-parse", "HEAD"], cwd=root) or b"").decode().strip()
    return {
        "command": shlex.join(command),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "unknown",
        "params": yaml.safe_load((root / "params.yaml").read_text()),
        "metrics": metrics,
        "platform": json.loads((root / PLATFORM_FILE).read_text())
        if (root / PLATFORM_FILE).exists()
        else None,
        "stage_times": stage_times or [],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """record's command line."""
    parser.add_argument("name", help="the record's name: metrics/records/NAME.json")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")


def run(args: argparse.Namespace) -> None:
    """Run the command, then write the record of what it left in the workspace."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise PipelineError("give the command after --: sentiment record NAME -- dvc repro")
    if not args.name.replace("-", "").replace("_", "").isalnum():
        raise PipelineError(f"record name {args.name!r}: use letters, digits, - and _ only")
    if not Path("dvc.yaml").exists():
        raise PipelineError("no dvc.yaml here: run sentiment record from the project's root")
    shown = ["dvc", *command[1:]] if command[0] == "dvc" else command
    runnable = [*DVC, *command[1:]] if command[0] == "dvc" else command
    log(f"record: running {shlex.join(shown)}")
    with tempfile.TemporaryDirectory(prefix="record-") as scratch:
        times = Path(scratch) / "stage-times.jsonl"
        env = os.environ | {STAGE_TIMES_ENV: str(times)}
        if subprocess.run(runnable, check=False, env=env).returncode != 0:
            raise PipelineError(
                f"`{shlex.join(shown)}` failed (its output is above): nothing recorded"
            )
        ran = read_stage_times(times)
    path = RECORDS / f"{args.name}.json"
    write_json(path, record_of_workspace(Path.cwd(), shown, ran))
    log(f"record: wrote {path}")
