"""Side by side with the tutorial's script: same data, same configuration, same machine.

Usage:
  sentiment benchmark pipeline --reference seed_reference.py --archive aclImdb_v1.tar.gz \\
      [--repeats 3] [--levers]

Each repeat runs the reference script, then the whole pipeline (`dvc repro` in a fresh copy of this
project with an empty DVC cache, IMDB read from the archive, download included), one after the
other, so both see the same machine load. It prints one line per run, a table of medians and
ratios, and last one JSON line. Training throughput counts reviews trained on per second of
`fit`, validation included, as the reference script does. Peak memory is the largest resident
set of any one process of the run.

--levers also measures what each speed lever adds, training 2 epochs on the same preprocessed data
in a fresh process per run: Keras' own layers reading all 300 padded steps, then the fused
layers, then masked padding with batches cut to their longest review, then one thread per op.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sentiment.classifier.training.summary import SUMMARY_PATTERN
from sentiment.errors import PipelineError
from sentiment.measurement.processes import Measured, run_measured
from sentiment.proof.project_copy import PROJECT_ROOT, copy_project, project_env
from sentiment.proof.records import TEST_METRICS
from sentiment.tools import DVC

# name -> (stock layers, mask padding and cut batches, one thread per op)
LEVERS = {
    "keras layers, 300 steps": (True, False, False),
    "+ fused LSTM and embedding": (False, False, False),
    "+ masked padding, batches cut": (False, True, False),
    "+ one thread per op": (False, True, True),
}
LEVER_EPOCHS = 2


def run_checked(command: list[str], cwd: Path, env: dict[str, str]) -> Measured:
    """run_measured, failing with the last lines the command wrote if it fails."""
    run = run_measured(command, cwd=cwd, env=env)
    if run.exit_status != 0:
        tail = "\n".join((run.stdout + run.stderr).splitlines()[-15:])
        raise PipelineError(f"{' '.join(command)} failed ({run.exit_status}):\n{tail}")
    return run


def last_json_line(text: str) -> dict:
    """The last line of `text` that parses as a JSON object."""
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise PipelineError("the reference script printed no JSON line: is it seed_reference.py?")


def quiet_env(**extra: str) -> dict[str, str]:
    return os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "DVC_NO_ANALYTICS": "1"} | extra


def run_reference(script: Path, archive: Path) -> dict:
    run = run_checked(
        [sys.executable, str(script), "--archive", str(archive)], Path.cwd(), quiet_env()
    )
    result = last_json_line(run.stdout)
    return {
        "test_accuracy": result["test_accuracy"],
        "train_reviews_per_s": result["train_samples_per_s"],
        "fit_s": result["fit_s"],
        "wall_s": round(run.wall_s, 1),
        "peak_rss_mb": round(run.peak_rss_mb),
    }


def run_pipeline(workspace: Path, archive: Path) -> dict:
    project = copy_project(workspace)
    run = run_checked([*DVC, "repro"], project, project_env(archive))
    summary = SUMMARY_PATTERN.search(run.stderr) or SUMMARY_PATTERN.search(run.stdout)
    if not summary:
        raise PipelineError("the train stage printed no summary line")
    metrics = json.loads((project / TEST_METRICS).read_text())
    return {
        "test_accuracy": metrics["accuracy"],
        "train_reviews_per_s": float(summary.group(3).replace(",", "")),
        "fit_s": float(summary.group(2)),
        "wall_s": round(run.wall_s, 1),
        "peak_rss_mb": round(run.peak_rss_mb),
    }


def measure_lever(data: Path, stock_layers: bool, mask_padding: bool, one_thread: bool) -> None:
    """(In a fresh process.) Train the tutorial configuration briefly; print reviews/s as JSON."""
    from sentiment.classifier.data.splits import embedding_rows, load_split
    from sentiment.classifier.training.fit import train_model
    from sentiment.params import ModelConfig, TrainingConfig, load_params
    from sentiment.tensorflow_start import run_ops_single_threaded

    if one_thread:
        run_ops_single_threaded()
    train, validation = load_split(data / "train.npz"), load_split(data / "validation.npz")
    params = load_params(PROJECT_ROOT / "params.yaml").replace(
        mask_padding=mask_padding, epochs=LEVER_EPOCHS
    )
    vocab_size = embedding_rows(data)
    started = time.perf_counter()
    train_model(
        train=train,
        validation=validation,
        model_config=ModelConfig.from_params(
            params, vocab_size=vocab_size, stock_layers=stock_layers
        ),
        training_config=TrainingConfig.from_params(params),
        verbose=0,
    )
    seconds = time.perf_counter() - started
    print(json.dumps({"train_reviews_per_s": round(len(train) * LEVER_EPOCHS / seconds, 1)}))


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """benchmark pipeline's command line."""
    parser.add_argument("--reference", type=Path, help="the tutorial's seed_reference.py")
    parser.add_argument("--archive", type=Path, help="an aclImdb tar archive")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--levers", action="store_true", help="also measure each speed lever")
    parser.add_argument("--measure-lever", help=argparse.SUPPRESS)  # the child process' side
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> None:
    """Alternate the reference script and the pipeline; print each run, the medians, the ratios."""
    if args.measure_lever:
        measure_lever(args.data, *LEVERS[args.measure_lever])
        return
    for name, path in (("--reference", args.reference), ("--archive", args.archive)):
        if path is None or not path.is_file():
            raise PipelineError(
                f"{name} {path} is not a file: give the reference script and the archive"
            )
    if args.repeats < 1:
        raise PipelineError("--repeats must be at least 1")

    references, pipelines, levers = [], [], {name: [] for name in LEVERS}
    with tempfile.TemporaryDirectory(prefix="benchmark-") as scratch:
        for repeat in range(1, args.repeats + 1):
            references.append(run_reference(args.reference, args.archive))
            print(f"reference  run {repeat}: {json.dumps(references[-1])}", flush=True)
            workspace = Path(scratch) / f"pipeline-{repeat}"
            pipelines.append(run_pipeline(workspace, args.archive))
            print(f"pipeline   run {repeat}: {json.dumps(pipelines[-1])}", flush=True)
        if args.levers:
            data = Path(scratch) / "pipeline-1/data/processed"
            for repeat in range(1, args.repeats + 1):
                for name in LEVERS:
                    command = [sys.executable, "-m", "sentiment", "benchmark", "pipeline"]
                    command += ["--measure-lever", name, "--data", str(data)]
                    lever_run = run_checked(command, PROJECT_ROOT, quiet_env())
                    levers[name].append(last_json_line(lever_run.stdout)["train_reviews_per_s"])
                    print(f"lever      run {repeat}: {name}: {levers[name][-1]} reviews/s")

    summary = {
        "repeats": args.repeats,
        "reference": {key: median(references, key) for key in references[0]},
        "pipeline": {key: median(pipelines, key) for key in pipelines[0]},
    }
    ref, ours = summary["reference"], summary["pipeline"]
    summary["ratios"] = {
        "train_throughput": round(ours["train_reviews_per_s"] / ref["train_reviews_per_s"], 2),
        "wall_time": round(ours["wall_s"] / ref["wall_s"], 2),
        "peak_memory": round(ours["peak_rss_mb"] / ref["peak_rss_mb"], 2),
    }
    summary["accuracy_points_vs_reference"] = round(
        100 * (ours["test_accuracy"] - ref["test_accuracy"]), 2
    )
    print(f"\nmedians of {args.repeats} alternating runs   reference   pipeline   ratio")
    rows = (
        ("training reviews/s", "train_reviews_per_s", "train_throughput", ".0f"),
        ("wall time, s (pipeline: dvc repro)", "wall_s", "wall_time", ".1f"),
        ("peak memory, MB", "peak_rss_mb", "peak_memory", ".0f"),
    )
    for label, key, ratio, spec in rows:
        print(
            f"{label:36} {ref[key]:>9{spec}}  {ours[key]:>9{spec}}  "
            f"{summary['ratios'][ratio]:>5.2f}x"
        )
    print(
        f"{'test accuracy':36} {ref['test_accuracy']:>9.4f}  {ours['test_accuracy']:>9.4f}  "
        f"{summary['accuracy_points_vs_reference']:+.2f} points"
    )
    if args.levers:
        baseline = statistics.median(levers[next(iter(LEVERS))])
        summary["levers_train_reviews_per_s"] = {}
        print("\ntraining reviews/s by lever (medians)")
        for name, values in levers.items():
            value = statistics.median(values)
            summary["levers_train_reviews_per_s"][name] = value
            print(f"  {name:34} {value:>8.0f}  {value / baseline:>5.2f}x")
    print(json.dumps(summary))
