"""Side by side with the tutorial's script: same data, same configuration, same machine.

Usage:
  sentiment benchmark pipeline --reference seed_reference.py --archive aclImdb_v1.tar.gz \\
      [--repeats 3] [--isa native AVX2] [--levers] [--output FILE]

Each repeat runs the reference script, then the whole pipeline (`dvc repro` in a fresh copy of this
project with an empty DVC cache, IMDB read from the archive, download included), one after the
other, so both see the same machine load. It prints one line per run, a table of medians and
ratios, and last one JSON line. Training throughput counts reviews trained on per second of
`fit`, validation included, as the reference script does. Peak memory is the largest resident
set of any one process of the run.

Where the time goes: every stage records its wall time, CPU time, peak memory and the part spent
starting up (the interpreter, and every import statement it ran: TensorFlow's among them), and
the table shows each stage's median beside DVC's own share (the whole run's wall time less the
stages'). The machine's float32 matrix-multiply rate is measured in the same run.

--isa runs the whole comparison once per instruction-set ceiling: `native`, and for example
`AVX2` (ONEDNN_MAX_CPU_ISA=AVX2, for the reference script and the pipeline alike), which emulates
an AVX2 machine on an AVX-512 one. The default is native, plus AVX2 where the CPU has AVX-512.
--output writes the summary JSON (with the platform) to a file as well.

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
from sentiment.console import STAGE_TIMES_ENV, read_stage_times
from sentiment.errors import PipelineError
from sentiment.files import write_json
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


def run_reference(script: Path, archive: Path, extra_env: dict[str, str] | None = None) -> dict:
    run = run_checked(
        [sys.executable, str(script), "--archive", str(archive)],
        Path.cwd(),
        quiet_env(**(extra_env or {})),
    )
    result = last_json_line(run.stdout)
    return {
        "test_accuracy": result["test_accuracy"],
        "train_reviews_per_s": result["train_samples_per_s"],
        "fit_s": result["fit_s"],
        "wall_s": round(run.wall_s, 1),
        "peak_rss_mb": round(run.peak_rss_mb),
    }


def isa_env(isa: str) -> dict[str, str]:
    """The environment that caps oneDNN at `isa` (nothing for native)."""
    return {} if isa == "native" else {"ONEDNN_MAX_CPU_ISA": isa}


def default_isas() -> list[str]:
    from sentiment.proof.platform_record import describe_cpu

    return ["native", "AVX2"] if "avx512f" in describe_cpu()["dispatch_features"] else ["native"]


def times_by_stage(path: Path) -> dict[str, dict]:
    """{stage: its times} from the lines the stages appended (console.STAGE_TIMES_ENV)."""
    return {record.pop("stage"): record for record in read_stage_times(path)}


def run_pipeline(
    workspace: Path, archive: Path, isa: str = "native", unlabelled_archive: Path | None = None
) -> dict:
    project = copy_project(workspace)
    times = workspace.parent / f"{workspace.name}-stage-times.jsonl"
    env = project_env(archive, unlabelled_archive, **isa_env(isa), **{STAGE_TIMES_ENV: str(times)})
    run = run_checked([*DVC, "repro"], project, env)
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
        "stages": times_by_stage(times),
    }


def matmul_rate(isa: str) -> float:
    """GFLOP/s of a 2048-square float32 matmul on all cores, in a fresh process at `isa`."""
    code = "from sentiment.measurement import flops; print(flops.matmul_gflops(2048, 2048, 2048))"
    run = run_checked([sys.executable, "-c", code], PROJECT_ROOT, quiet_env(**isa_env(isa)))
    return round(float(run.stdout.strip().splitlines()[-1]), 1)


def stage_table(pipelines: list[dict]) -> tuple[dict[str, dict], list[str]]:
    """Each stage's medians over the runs, DVC's own share, and the table's lines."""
    stages = {}
    for name in pipelines[0]["stages"]:
        runs = [p["stages"][name] for p in pipelines if name in p["stages"]]
        stages[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    total = statistics.median(p["wall_s"] for p in pipelines)
    in_stages = sum(stage["wall_s"] for stage in stages.values())
    lines = [
        f"{'stage':14} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'start-up s':>10} {'share':>6}",
    ]
    for name, stage in stages.items():
        share = stage["start_up_s"] / stage["wall_s"] if stage["wall_s"] else 0.0
        lines.append(
            f"{name:14} {stage['wall_s']:>7.1f} {stage['cpu_s']:>7.1f} "
            f"{stage['peak_rss_mb']:>8.0f} {stage['start_up_s']:>10.1f} {share:>6.0%}"
        )
    start_up = sum(stage["start_up_s"] for stage in stages.values())
    lines.append(
        f"{'all stages':14} {in_stages:>7.1f} {'':>7} {'':>8} {start_up:>10.1f} "
        f"{start_up / in_stages:>6.0%}"
    )
    lines.append(f"{'DVC itself':14} {total - in_stages:>7.1f}   (the run's wall less the stages')")
    return stages, lines


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
    parser.add_argument(
        "--unlabelled-archive",
        type=Path,
        help="mirror of IMDB's unlabelled reviews, for unlabelled: imdb (default: --archive's)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument(
        "--isa", nargs="+", help="native and/or ONEDNN_MAX_CPU_ISA values (default: see above)"
    )
    parser.add_argument("--levers", action="store_true", help="also measure each speed lever")
    parser.add_argument("--output", type=Path, help="also write the summary JSON here")
    parser.add_argument("--measure-lever", help=argparse.SUPPRESS)  # the child process' side
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)


def compare(args: argparse.Namespace, isa: str, scratch: Path) -> dict:
    """The alternating runs at one instruction-set ceiling, their medians, ratios and tables."""
    references, pipelines, levers = [], [], {name: [] for name in LEVERS}
    for repeat in range(1, args.repeats + 1):
        with_isa = isa_env(isa)
        references.append(run_reference(args.reference, args.archive, with_isa))
        print(f"[{isa}] reference run {repeat}: {json.dumps(references[-1])}", flush=True)
        workspace = scratch / f"{isa}-pipeline-{repeat}"
        pipelines.append(run_pipeline(workspace, args.archive, isa, args.unlabelled_archive))
        shown = {k: v for k, v in pipelines[-1].items() if k != "stages"}
        print(f"[{isa}] pipeline  run {repeat}: {json.dumps(shown)}", flush=True)
    if args.levers:
        data = scratch / f"{isa}-pipeline-1/data/processed"
        for repeat in range(1, args.repeats + 1):
            for name in LEVERS:
                command = [sys.executable, "-m", "sentiment", "benchmark", "pipeline"]
                command += ["--measure-lever", name, "--data", str(data)]
                lever_run = run_checked(command, PROJECT_ROOT, quiet_env(**isa_env(isa)))
                levers[name].append(last_json_line(lever_run.stdout)["train_reviews_per_s"])
                print(f"[{isa}] lever run {repeat}: {name}: {levers[name][-1]} reviews/s")

    keys = [key for key in pipelines[0] if key != "stages"]
    summary = {
        "isa": isa,
        "matmul_gflops": matmul_rate(isa),
        "reference": {key: median(references, key) for key in references[0]},
        "pipeline": {key: median(pipelines, key) for key in keys},
    }
    summary["stages"], stage_lines = stage_table(pipelines)
    ref, ours = summary["reference"], summary["pipeline"]
    summary["ratios"] = {
        "train_throughput": round(ours["train_reviews_per_s"] / ref["train_reviews_per_s"], 2),
        "wall_time": round(ours["wall_s"] / ref["wall_s"], 2),
        "peak_memory": round(ours["peak_rss_mb"] / ref["peak_rss_mb"], 2),
    }
    summary["accuracy_points_vs_reference"] = round(
        100 * (ours["test_accuracy"] - ref["test_accuracy"]), 2
    )
    print(f"\n[{isa}] medians of {args.repeats} alternating runs   reference   pipeline   ratio")
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
    print(f"matmul 2048^3 float32, all cores: {summary['matmul_gflops']} GFLOP/s")
    print(f"\n[{isa}] where the pipeline's time goes (medians; start-up: interpreter + imports)")
    print("\n".join(stage_lines))
    if args.levers:
        baseline = statistics.median(levers[next(iter(LEVERS))])
        summary["levers_train_reviews_per_s"] = {}
        print(f"\n[{isa}] training reviews/s by lever (medians)")
        for name, values in levers.items():
            value = statistics.median(values)
            summary["levers_train_reviews_per_s"][name] = value
            print(f"  {name:34} {value:>8.0f}  {value / baseline:>5.2f}x")
    return summary


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
    if args.unlabelled_archive is not None and not args.unlabelled_archive.exists():
        raise PipelineError(
            f"--unlabelled-archive {args.unlabelled_archive} does not exist: give the archive or "
            "folder of aclImdb/train/unsup/"
        )
    if args.repeats < 1:
        raise PipelineError("--repeats must be at least 1")
    from sentiment.proof.platform_record import describe_cpu

    isas = args.isa or default_isas()
    with tempfile.TemporaryDirectory(prefix="benchmark-") as scratch:
        by_isa = [compare(args, isa, Path(scratch)) for isa in isas]
    record = {
        "command": "sentiment benchmark pipeline --reference seed_reference.py --archive "
        f"aclImdb_v1.tar.gz --repeats {args.repeats} --isa {' '.join(isas)}"
        + (" --levers" if args.levers else ""),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "cpu": describe_cpu(),
        "repeats": args.repeats,
        "runs": by_isa,
    }
    if args.output:
        write_json(args.output, record)
    print(json.dumps(record))
