"""Measure the run-to-run noise of a configuration: the pipeline over seeds and emulated platforms.

Usage:
  sentiment measure-noise --archive aclImdb_v1.tar.gz [--seeds 42 1 2 ...] \\
      [--emulate ONEDNN_MAX_CPU_ISA=AVX] [--emulate TF_ENABLE_ONEDNN_OPTS=0] \\
      [--output metrics/noise.json]

In a fresh copy of this project (params.yaml as committed) it runs `dvc repro` with the first
seed, queues one experiment per other seed with DVC's queue (`dvc exp run --queue -S seed=N`,
`dvc queue start`), then re-runs the first seed once per --emulate setting: an environment variable
that makes TensorFlow run other kernels on this same machine, as another CPU would. It writes the
mean, standard deviation and every value of each metric over the seeds, and each emulated run's
metrics with its difference from the native run. The reproduction check (proof/reproduction.py)
derives its cross-platform tolerances from this file; `sentiment compare` shows the noise band.

The seed also draws the validation split (and so the vocabulary and the baseline's training
reviews): the spread is that of the whole pipeline, a conservative stand-in for what another
platform's rounding does to one training run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from sentiment.console import log
from sentiment.errors import PipelineError
from sentiment.files import write_json
from sentiment.params import load_params
from sentiment.proof.experiment_queue import ExperimentQueue
from sentiment.proof.project_copy import copy_project, project_env
from sentiment.proof.records import (
    HEADLINE_METRICS,
    METRICS_FILES,
    NOISE_FILE,
    PLATFORM_FILE,
    TEST_METRICS,
    flatten,
    lookup,
)
from sentiment.tools import dvc, git

DEFAULT_SEEDS = (42, 1, 2, 3, 4, 5, 6, 7, 8, 9)
DEFAULT_EMULATIONS = ("ONEDNN_MAX_CPU_ISA=AVX", "TF_ENABLE_ONEDNN_OPTS=0")


def read_metrics(project: Path) -> dict[str, dict[str, float]]:
    """{metrics file: {metric: value}} of a finished run in `project`."""
    return {
        path: flatten(json.loads((project / path).read_text()))
        for path in METRICS_FILES
        if (project / path).exists()
    }


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation, range and the values themselves."""
    return {
        "mean": round(statistics.fmean(values), 6),
        "std": round(statistics.stdev(values), 6) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, dict]]:
    """{metrics file: {metric: spread}} over runs, for the metrics every run has."""
    summary = {}
    for path in runs[0]:
        names = set.intersection(*(set(run.get(path, {})) for run in runs))
        summary[path] = {name: spread([run[path][name] for run in runs]) for name in sorted(names)}
    return summary


def differences(
    run: dict[str, dict[str, float]], reference: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """{metrics file: {metric: run - reference}} for the metrics that differ."""
    changed = {}
    for path, metrics in run.items():
        deltas = {
            name: round(value - reference[path][name], 6)
            for name, value in metrics.items()
            if name in reference.get(path, {}) and value != reference[path][name]
        }
        if deltas:
            changed[path] = deltas
    return changed


def parse_emulation(setting: str) -> dict[str, str]:
    """'NAME=value' as {NAME: value}."""
    name, sep, value = setting.partition("=")
    if not sep or not name or not value:
        raise PipelineError(f"--emulate {setting!r} is not NAME=value: e.g. ONEDNN_MAX_CPU_ISA=AVX")
    return {name: value}


class Sweep:
    """The measurement's project copy and the DVC commands run in it."""

    def __init__(self, project: Path, mirror: Path | None, unlabelled_mirror: Path | None = None):
        self.project, self.mirror, self.unlabelled_mirror = project, mirror, unlabelled_mirror

    def env(self, **environment: str) -> dict[str, str]:
        """The copy's environment, with the mirrors."""
        return project_env(self.mirror, self.unlabelled_mirror, **environment)

    def dvc(self, *args: str, **environment: str) -> str:
        """A DVC command in the copy; a failure quotes the last 20 lines DVC wrote."""
        env = self.env(**environment)
        return dvc(*args, cwd=self.project, env=env, shown_lines=20)

    def git(self, *args: str) -> None:
        git(*args, cwd=self.project, env=project_env())

    def run_queue(self, seeds: list[int]) -> dict[int, dict[str, dict[str, float]]]:
        """Queue one experiment per seed, run them, and return each one's metrics."""
        queue = ExperimentQueue(self.project, self.env())
        names = {f"seed-{seed}": seed for seed in seeds}
        for name, seed in names.items():
            queue.queue(name, {"seed": seed})
        queue.start(jobs=1)
        with tqdm(total=len(seeds), desc="noise: queued seeds", unit="run") as progress:

            def finished(name: str, status: str) -> None:
                if status != "Success":
                    raise PipelineError(
                        f"the queued experiment {name} failed: {queue.log_tail(name)} "
                        f"(`dvc queue logs {name}` in {self.project})"
                    )
                progress.update()

            queue.wait(names, on_finished=finished)
        results = queue.results()
        return {seed: results[name]["metrics"] for name, seed in names.items() if name in results}

    def run_workspace(self, force: bool, **environment: str) -> tuple[dict, dict]:
        """`dvc repro` in the copy (every stage when forced); its metrics and platform record."""
        self.dvc("repro", *(["--force"] if force else []), **environment)
        platform = json.loads((self.project / PLATFORM_FILE).read_text())
        return read_metrics(self.project), platform


def measure_noise(
    project: Path,
    mirror: Path | None,
    seeds: list[int],
    emulations: list[dict[str, str]],
    unlabelled_mirror: Path | None = None,
) -> dict:
    """Run the sweep in `project` (a fresh copy) and return the noise record."""
    sweep = Sweep(project, mirror, unlabelled_mirror)
    params = yaml.safe_load((project / "params.yaml").read_text())
    first, *others = seeds
    started = time.perf_counter()
    write_seed(project / "params.yaml", params, first)
    log(f"noise: seed {first}, native")
    native, platform = sweep.run_workspace(force=False)
    sweep.git("add", "-A")
    sweep.git("commit", "-qm", f"seed {first}")  # the queue copies git-tracked files only
    runs = {first: native}
    if others:
        log(f"noise: seeds {', '.join(map(str, others))} through DVC's queue")
        runs |= sweep.run_queue(others)
    missing = [seed for seed in seeds if seed not in runs]
    if missing:
        raise PipelineError(f"no metrics came back for seeds {missing}: see `dvc exp show`")
    emulated = []
    for environment in emulations:
        log(f"noise: seed {first} with {environment}")
        metrics, emulated_platform = sweep.run_workspace(force=True, **environment)
        emulated.append(
            {
                "environment": environment,
                "seed": first,
                "metrics": metrics,
                "differences_from_native": differences(metrics, native),
                "platform_changes": {
                    key: emulated_platform[key]
                    for key in emulated_platform
                    if emulated_platform[key] != platform.get(key)
                },
            }
        )
    return {
        "what": (
            "Run-to-run spread of the pipeline's metrics for one configuration: the same code "
            "and params over several seeds (DVC's queue), and the first seed under emulated "
            "other platforms on the same machine. Not a metric: the reproduction check "
            "(sentiment check-reproduction) derives its cross-platform tolerances from it."
        ),
        "command": "sentiment measure-noise --archive aclImdb_v1.tar.gz "
        + ("--unlabelled-archive aclImdb_unsup.tar.gz " if unlabelled_mirror else "")
        + " ".join(f"--emulate {k}={v}" for e in emulations for k, v in e.items())
        + f" --seeds {' '.join(map(str, seeds))}",
        "params": {key: value for key, value in params.items() if key != "seed"},
        "seeds": seeds,
        "platform": platform,
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "metrics": summarise([runs[seed] for seed in seeds]),
        "emulated_platforms": emulated,
    }


def write_seed(path: Path, params: dict, seed: int) -> None:
    path.write_text(yaml.safe_dump(params | {"seed": seed}, sort_keys=False))


def describe(record: dict) -> str:
    """A few lines for the terminal: the headline metrics' spread and the emulated differences."""
    lines = [f"noise over {len(record['seeds'])} seeds ({record['minutes']} min):"]
    for path, name in HEADLINE_METRICS:
        stats = lookup(record["metrics"].get(path, {}), name)
        if stats:
            lines.append(
                f"  {path} {name}: mean {stats['mean']:.5f}, std {stats['std']:.5f}, "
                f"range {stats['min']:.5f}..{stats['max']:.5f}"
            )
    for emulated in record["emulated_platforms"]:
        test = emulated["metrics"].get(TEST_METRICS, {})
        lines.append(
            f"  seed {emulated['seed']} with {emulated['environment']}: network test accuracy "
            f"{test.get('accuracy')} (native "
            f"{record['metrics'][TEST_METRICS]['accuracy']['values'][0]})"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """measure-noise's command line."""
    parser.add_argument("--archive", type=Path, help="IMDB mirror (aclImdb tar or folder)")
    parser.add_argument(
        "--unlabelled-archive",
        type=Path,
        help="mirror of IMDB's unlabelled reviews, for unlabelled: imdb (default: --archive's)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument(
        "--emulate",
        action="append",
        help=f"NAME=value run once more with it (default: {', '.join(DEFAULT_EMULATIONS)})",
    )
    parser.add_argument("--output", type=Path, default=Path(NOISE_FILE))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))


def run(args: argparse.Namespace) -> None:
    """Measure the noise in a fresh copy of the project and write the record."""
    if len(args.seeds) < 2 or len(set(args.seeds)) != len(args.seeds):
        raise PipelineError(
            "--seeds needs at least two different seeds (five or more for a real spread)"
        )
    for flag, path in (
        ("--archive", args.archive),
        ("--unlabelled-archive", args.unlabelled_archive),
    ):
        if path is not None and not path.exists():
            raise PipelineError(f"{flag} {path} does not exist: give the aclImdb archive or folder")
    emulations = [parse_emulation(s) for s in (args.emulate or DEFAULT_EMULATIONS)]
    load_params(args.params)  # checked before minutes of work
    with tempfile.TemporaryDirectory(prefix="noise-") as scratch:
        project = copy_project(Path(scratch) / "project")
        (project / "params.yaml").write_text(args.params.read_text())
        record = measure_noise(
            project, args.archive, args.seeds, emulations, args.unlabelled_archive
        )
    write_json(args.output, record)
    log(describe(record))
    log(f"measure-noise: wrote {args.output}")
