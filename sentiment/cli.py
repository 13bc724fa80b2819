"""The `sentiment` command: one entry point, a subcommand for each thing users run.

The pipeline's stages are not here: `dvc repro` runs them (stages/, as dvc.yaml says).
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Sequence
from types import ModuleType

from sentiment.console import run_main

# subcommand -> (module with add_arguments(parser) and run(args), one-line help)
COMMANDS = {
    "predict": (
        "sentiment.classifier.serving.predict",
        "score raw reviews with an exported model, one JSON line each",
    ),
    "serve": (
        "sentiment.classifier.serving.serve",
        "serve the exported model over HTTP (TensorFlow Serving's REST API, batching, a page)",
    ),
    "compare": (
        "sentiment.proof.comparison",
        "compare this change with a base revision beside the seed noise (a pull request's view)",
    ),
    "check-reproduction": (
        "sentiment.proof.reproduction",
        "after `dvc repro`: prove the committed metrics and dvc.lock came from this code",
    ),
    "measure-noise": (
        "sentiment.proof.seed_noise",
        "measure the metrics' run-to-run spread over seeds and emulated platforms",
    ),
    "pull-request": (
        "sentiment.proof.pull_request",
        "the pull-request workflow's steps: get the data, post the comparison as a comment",
    ),
    "tune": (
        "sentiment.tuning.study",
        "search params.yaml with Optuna on DVC's queue; confirm the winner over seeds",
    ),
    "apply-params": (
        "sentiment.tuning.overlay",
        "write a params overlay (a study's best.yaml) into params.yaml, or run it",
    ),
    "record": (
        "sentiment.proof.run_record",
        "run a command that makes a result and record it in metrics/records/NAME.json",
    ),
    "records": (
        "sentiment.proof.record_summary",
        "put recorded runs side by side: each metric's mean and range over them, targets met",
    ),
    "imdb-source": (
        "sentiment.proof.imdb_source",
        "where the download stage would get IMDB from here: mirror, tensorflow-datasets, or none",
    ),
    "write-plots-page": (
        "sentiment.proof.plots_page",
        "write the `dvc plots` page that draws offline (Vega inlined)",
    ),
}
# benchmark's own subcommands, in the same form
BENCHMARKS = {
    "pipeline": (
        "sentiment.measurement.pipeline_benchmark",
        "the whole pipeline beside the tutorial's script: time, throughput, memory",
    ),
    "predict": (
        "sentiment.measurement.predict_benchmark",
        "predict's throughput and peak memory as its input grows",
    ),
    "serve": (
        "sentiment.measurement.serve_benchmark",
        "sentiment serve under load on loopback, with and without batching, beside predict",
    ),
    "flops": (
        "sentiment.measurement.flops",
        "training FLOPs per review, the GFLOP/s reached and the machine's matmul rate",
    ),
    "steps": (
        "sentiment.measurement.step_profile",
        "a TensorFlow profile of a configuration's training steps: where a step's time goes",
    ),
    "data": (
        "sentiment.measurement.data_benchmark",
        "the data stages' time and peak memory as a data file grows",
    ),
}


def _add_commands(
    subcommands: argparse._SubParsersAction, commands: dict[str, tuple[str, str]]
) -> None:
    for name, (module_name, summary) in commands.items():
        module = importlib.import_module(module_name)
        parser = subcommands.add_parser(
            name,
            help=summary,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(parser)
        parser.set_defaults(command_module=module)


def parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand with its --help."""
    main_parser = argparse.ArgumentParser(
        prog="sentiment",
        description="Commands around the DVC pipeline (which `dvc repro` runs): serve, compare, "
        "prove and measure.",
    )
    subcommands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_commands(subcommands, COMMANDS)
    benchmark = subcommands.add_parser(
        "benchmark", help="measure speed and memory", description="Measure speed and memory."
    )
    _add_commands(benchmark.add_subparsers(dest="benchmark", required=True), BENCHMARKS)
    return main_parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the subcommand; errors are one line (console.run_main)."""
    # Quieter than a stage: on some CPUs (an AVX-512 Intel Xeon, measured) oneDNN logs its kernel
    # fallbacks at ERROR level, which is not an error to whoever reads a command's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = parser().parse_args(argv)
    module: ModuleType = args.command_module
    run_main(lambda: module.run(args))
