"""Did this commit's code make the committed results? Exact on their platform, in noise elsewhere.

After `dvc repro` (CI: `dvc repro --force` in a clean clone), `check_reproduction` compares the run
in the work tree with what HEAD commits, in one of two modes, and says which:

- same platform (metrics/platform.json equal to HEAD's): every metric equal, and the run's
  dvc.lock equal to HEAD's but for the outputs whose bytes are not reproducible (NOT_BYTE_
  REPRODUCIBLE). Training is bitwise deterministic there.
- another platform (another CPU, other kernels, other library versions): TensorFlow sums in
  another order and training turns the last-bit difference into another model of the same
  quality. The metrics of the stages that do not train (data statistics, the linear baseline)
  must still be equal; the models' numeric metrics must lie within `tolerance` of the committed
  ones, derived from the seed spread measured in metrics/noise.json (the others, such as which
  model ships, must be equal); the lock check covers what a
  platform cannot change: every stage's command, params and code and data deps, and the outputs
  of the stages that do not train (but for LAST_BITS_FOLLOW_THE_CPU).

In both modes each committed metrics file must be the file its run wrote (its md5 is in HEAD's
dvc.lock), so a hand-edited metric fails whatever the tolerance.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sentiment.errors import CheckFailed, PipelineError
from sentiment.params import Params
from sentiment.proof.platform_record import platform_differences
from sentiment.proof.records import NOISE_FILE, PLATFORM_FILE, TEST_METRICS
from sentiment.tools import dvc_json, git_show

# The stages that train (word2vec's vectors too: BLAS sums in the CPU's own order); they and every
# stage fed by their outputs depend on the platform.
TRAINING_STAGES = ("word_vectors", "pretrain", "train")
# Outputs whose bytes differ from run to run although their content does not: TensorFlow writes
# a SavedModel's graph in an order that changes between processes (sentiment/saving.py makes the
# .keras files byte-reproducible).
NOT_BYTE_REPRODUCIBLE = ("models/export",)
# Outputs of stages that do not train whose last bits follow the CPU's own math kernels (NumPy's
# exp and log take other vector paths on another CPU): the baseline's weights and probabilities.
# Exact on their platform; elsewhere their metrics, rounded, are what must be equal.
LAST_BITS_FOLLOW_THE_CPU = ("models/baseline",)
# The chance that a correct run on another platform fails the check for one metric.
FALSE_ALARM_RATE = 0.001
# Counts of epochs (DVCLive's last step; with early stopping the best epoch and the epochs run):
# another platform's last-bit differences can move the epoch at which the validation loss stops
# improving even where every seed of the noise record stopped at the same one, so these get at
# least this many epochs either way, never zero.
EPOCH_COUNTS = ("step", "best_epoch", "epochs_run")
EPOCH_SLACK = 1


def tolerance(std: float, seeds: int, false_alarm_rate: float = FALSE_ALARM_RATE) -> float:
    """How far a metric reproduced on another platform may lie from the committed one.

    Derivation: a run on another platform is modelled as another draw from the distribution the
    seed sweep measured (on IMDB the emulated platforms' runs fall well inside it, see
    docs/reproducibility.md). The difference of two independent draws has standard deviation
    sqrt(2)*sigma; sigma is estimated by the sample standard deviation `std` of `seeds` runs, so
    difference / (sqrt(2) * std) follows Student's t with seeds - 1 degrees of freedom. The
    tolerance is that t's two-sided (1 - false_alarm_rate) quantile times sqrt(2) * std: a correct
    reproduction exceeds it with probability false_alarm_rate. A metric that did not vary over the
    seeds (a count of test reviews) gets 0: it must be equal.
    """
    from scipy.stats import t as student_t

    if seeds < 2:
        raise PipelineError(f"{NOISE_FILE} measured {seeds} seed(s): a spread needs at least two")
    quantile = float(student_t.ppf(1 - false_alarm_rate / 2, seeds - 1))
    return quantile * math.sqrt(2) * std


@dataclass
class Verdict:
    """What the check found: its mode, why, and what did not reproduce."""

    same_platform: bool
    platform_changes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    exact: int = 0
    within_tolerance: list[str] = field(default_factory=list)


def platform_dependent_stages(lock: dict) -> set[str]:
    """TRAINING_STAGES and every stage that reads, directly or not, one of their outputs."""
    stages = lock.get("stages", {})
    dependent = {name for name in TRAINING_STAGES if name in stages}
    grew = True
    while grew:
        outputs = {out["path"] for name in dependent for out in stages[name].get("outs", [])}
        readers = {
            name
            for name, stage in stages.items()
            if any(dep["path"] in outputs for dep in stage.get("deps", []))
        }
        grew = not readers <= dependent
        dependent |= readers
    return dependent


def _by_path(entries: list[dict]) -> dict[str, str | None]:
    return {entry["path"]: entry.get("md5") for entry in entries}


def lock_differences(committed: dict, reproduced: dict, same_platform: bool) -> dict[str, list]:
    """{stage: [what differs]} between HEAD's dvc.lock and the run's, as far as the mode checks.

    On another platform the outputs of platform-dependent stages, and their hashes where other
    stages read them, are not compared.
    """
    dependent = set() if same_platform else platform_dependent_stages(committed)
    unchecked_outputs = set(NOT_BYTE_REPRODUCIBLE) | {
        out["path"] for name in dependent for out in committed["stages"][name].get("outs", [])
    }
    if not same_platform:
        unchecked_outputs |= set(LAST_BITS_FOLLOW_THE_CPU)
    old_stages, new_stages = committed.get("stages", {}), reproduced.get("stages", {})
    found: dict[str, list] = {}
    for name in sorted(set(old_stages) | set(new_stages)):
        old, new = old_stages.get(name), new_stages.get(name)
        if old is None or new is None:
            found[name] = ["not in HEAD's dvc.lock" if old is None else "not run"]
            continue
        problems = []
        if old.get("cmd") != new.get("cmd"):
            problems.append("command changed")
        if old.get("params") != new.get("params"):
            problems.append({"params": {"committed": old.get("params"), "run": new.get("params")}})
        for kind in ("deps", "outs"):
            old_files, new_files = _by_path(old.get(kind, [])), _by_path(new.get(kind, []))
            changed = sorted(
                path
                for path in set(old_files) | set(new_files)
                if old_files.get(path) != new_files.get(path)
                and not (path in unchecked_outputs and path in old_files and path in new_files)
            )
            if changed:
                problems.append({f"changed {kind}": changed})
        if problems:
            found[name] = problems
    return found


def tampered_metrics(committed_lock: dict) -> list[str]:
    """HEAD's committed output files whose md5 is not the one HEAD's dvc.lock recorded."""
    tampered = []
    for stage in committed_lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            if out.get("nfiles") is not None or "md5" not in out:
                continue  # a folder: DVC hashes its listing, not a file
            content = git_show(out["path"])
            if content is not None and hashlib.md5(content).hexdigest() != out["md5"]:
                tampered.append(out["path"])
    return sorted(tampered)


def params_measured_differently(measured: dict, wanted: dict) -> list[str]:
    """The params whose value in a noise record is not the wanted one.

    A knob added after the record was measured is read at its default there: a new knob's
    default keeps the pipeline as it was (the rule for adding one), so the record still holds
    for a configuration that leaves it at its default.
    """
    defaults = {item.name: item.default for item in dataclasses.fields(Params)}
    measured = {key: defaults[key] for key in wanted if key in defaults} | measured
    return sorted(k for k in set(measured) | set(wanted) if measured.get(k) != wanted.get(k))


def load_noise(committed_params: dict) -> dict:
    """HEAD's noise record, if it was measured for the committed configuration."""
    raw = git_show(NOISE_FILE)
    if raw is None:
        raise PipelineError(
            f"HEAD has no {NOISE_FILE} to tell another platform's noise from a change: measure "
            "it with `sentiment measure-noise --archive aclImdb_v1.tar.gz` and commit it"
        )
    noise = json.loads(raw)
    wanted = {key: value for key, value in committed_params.items() if key != "seed"}
    changed = params_measured_differently(noise.get("params", {}), wanted)
    if changed:
        raise PipelineError(
            f"{NOISE_FILE} was measured for other params ({', '.join(changed)}): re-measure it "
            "for the committed ones with `sentiment measure-noise --archive ...`"
        )
    return noise


def compare_metrics(
    changes: dict[str, dict[str, dict]],
    platform_dependent_files: set[str],
    noise: dict | None,
    verdict: Verdict,
) -> None:
    """Every metric exact, but those of platform-dependent files within tolerance if noise."""
    for path, metrics in sorted(changes.items()):
        for name, change in sorted(metrics.items()):
            old, new = change.get("old"), change.get("new")
            if old is None or new is None:
                verdict.failures.append(f"{path}: {name} {old} -> {new}")
                continue
            numeric = all(isinstance(v, (int, float)) for v in (old, new))
            if noise is None or path not in platform_dependent_files or not numeric:
                if new == old:
                    verdict.exact += 1
                else:
                    verdict.failures.append(f"{path}: {name} {old} -> {new} (must be equal)")
                continue
            spread = noise["metrics"].get(path, {}).get(name)
            if spread is None:
                verdict.failures.append(
                    f"{path}: {name} has no measured spread in {NOISE_FILE}: re-measure it"
                )
                continue
            allowed = tolerance(spread["std"], len(spread["values"]))
            if name.rsplit(".", 1)[-1] in EPOCH_COUNTS:
                allowed = max(allowed, EPOCH_SLACK)
            if abs(new - old) > allowed:
                verdict.failures.append(
                    f"{path}: {name} {old} -> {new}, beyond the tolerance {allowed:.5g}"
                )
            else:
                verdict.within_tolerance.append(f"{path}: {name}")


def check_reproduction() -> Verdict:
    """Compare the finished run in the work tree with HEAD's results (see module doc)."""
    committed_lock_bytes, committed_metrics = git_show("dvc.lock"), git_show(TEST_METRICS)
    if committed_lock_bytes is None or committed_metrics is None:
        raise PipelineError("HEAD has no committed dvc.lock and metrics: commit a real run first")
    unfinished = dvc_json("status")
    if unfinished:
        raise PipelineError(
            f"the work tree is not a finished run (stages {', '.join(sorted(unfinished))} are "
            "out of date): run `dvc repro` first, then check"
        )
    committed_lock = yaml.safe_load(committed_lock_bytes)
    reproduced_lock = yaml.safe_load(Path("dvc.lock").read_text())
    committed_platform = _json_or_none(git_show(PLATFORM_FILE))
    reproduced_platform = _json_or_none(_read_or_none(Path(PLATFORM_FILE)))
    verdict = Verdict(same_platform=committed_platform == reproduced_platform)
    if committed_platform is None or reproduced_platform is None:
        side = "HEAD" if committed_platform is None else "the run"
        verdict.platform_changes = [f"{side} records no platform"]
    elif not verdict.same_platform:
        verdict.platform_changes = platform_differences(committed_platform, reproduced_platform)
    for path in tampered_metrics(committed_lock):
        verdict.failures.append(
            f"{path} at HEAD is not the file its run wrote (its md5 is not dvc.lock's): "
            "edited by hand?"
        )
    stale = lock_differences(committed_lock, reproduced_lock, verdict.same_platform)
    if stale:
        verdict.failures.append(
            f"the committed dvc.lock does not match what this commit's code produces (stages: "
            f"{', '.join(stale)}; {json.dumps(stale)})"
        )
    noise = None
    dependent_files: set[str] = set()
    if not verdict.same_platform:
        dependent = platform_dependent_stages(committed_lock)
        dependent_files = {
            out["path"] for name in dependent for out in committed_lock["stages"][name]["outs"]
        }
        params = yaml.safe_load(git_show("params.yaml") or b"{}") or {}
        noise = load_noise(params) if dependent else None
    changes = dvc_json("metrics", "diff", "HEAD", "--all")
    compare_metrics(changes, dependent_files, noise, verdict)
    return verdict


def _read_or_none(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _json_or_none(raw: bytes | None) -> dict | None:
    return json.loads(raw) if raw is not None else None


def describe(verdict: Verdict) -> str:
    """The check's report: its mode and why, then what passed or failed."""
    if verdict.same_platform:
        lines = [
            f"mode: same platform ({PLATFORM_FILE} equals HEAD's): exact, every metric and "
            f"dvc.lock equal (bytes of {', '.join(NOT_BYTE_REPRODUCIBLE)} not compared)"
        ]
    else:
        lines = [
            f"mode: another platform ({PLATFORM_FILE} differs from HEAD's: "
            f"{'; '.join(verdict.platform_changes[:6])}): data and "
            "baseline metrics exact, model metrics within the tolerance derived from "
            f"{NOISE_FILE}, dvc.lock compared on commands, params, code and data"
        ]
    if verdict.failures:
        lines.append(f"did not reproduce ({len(verdict.failures)}):")
        lines += [f"  {failure}" for failure in verdict.failures]
        lines.append("run `dvc repro` and commit dvc.lock and metrics/ (the real run's files)")
    else:
        within = len(verdict.within_tolerance)
        lines.append(
            f"reproduced: {verdict.exact} committed metrics equal"
            + (f", {within} within the measured noise" if within else "")
            + "; the committed dvc.lock matches this run"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """check-reproduction takes no arguments: it checks the work tree against HEAD."""


def run(args: argparse.Namespace) -> None:
    """After `dvc repro`: the committed metrics and dvc.lock must come out again."""
    verdict = check_reproduction()
    print(describe(verdict), file=sys.stderr if verdict.failures else sys.stdout)
    if verdict.failures:
        raise CheckFailed(f"{len(verdict.failures)} check(s) did not reproduce")
