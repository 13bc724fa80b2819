"""Review a change the way a pull request is reviewed: by DVC's own metric and param diffs.

Usage:
  python -m sentiment.review [BASE]              # this branch against BASE (default: main)
  python -m sentiment.review --check-reproduction  # CI, after `dvc repro` in a clean clone

Against BASE it prints the markdown tables of param and metric changes, says so when BASE has no
metrics yet, and fails when test accuracy drops by more than MAX_ACCURACY_DROP.

--check-reproduction proves the committed results came from the committed code: every committed
metric must come out of the run unchanged (REPRODUCTION_TOLERANCE), and `dvc status` against the
committed dvc.lock must report nothing to re-run.

Exit status: 0 fine, 1 the change fails the review or the reproduction, 2 it cannot be checked.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from sentiment.cli import run_stage
from sentiment.errors import PipelineError

# A change may cost at most this much test accuracy (0.005 = half a point) before review fails.
MAX_ACCURACY_DROP = 0.005
# Training and evaluation are bitwise deterministic on CPU (same commit and params, same metric
# bytes: measured on repeated full IMDB runs and tested on small data), so a reproduced metric
# must equal the committed one exactly.
REPRODUCTION_TOLERANCE = 0.0
# Outputs whose bytes differ from run to run although their content does not. TensorFlow writes
# a SavedModel's graph and variables in an order that changes between processes; the export's
# .keras file and every other output are byte-reproducible (sentiment/saving.py).
NOT_BYTE_REPRODUCIBLE = ("models/export",)
TEST_METRICS = "metrics/test.json"


class ReviewFailed(Exception):
    """The change is checkable and fails: a metric moved or the lock is stale."""


def dvc(*args: str) -> str:
    """Run a DVC command in the current repository; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"`dvc {' '.join(args)}` failed: {detail}")
    return result.stdout


def git_has(revision: str, path: str | None = None) -> bool:
    """Whether git knows `revision` (and, if given, `path` in it)."""
    target = f"{revision}:{path}" if path else f"{revision}^{{commit}}"
    result = subprocess.run(["git", "cat-file", "-e", target], capture_output=True, check=False)
    return result.returncode == 0


def metric_changes(base: str, include_unchanged: bool = False) -> dict[str, dict[str, dict]]:
    """{metrics file: {metric: {old, new, diff}}} between `base` and the workspace."""
    args = ["metrics", "diff", base, "--json"] + (["--all"] if include_unchanged else [])
    return json.loads(dvc(*args) or "{}")


def accuracy_drop(changes: dict[str, dict[str, dict]]) -> float:
    """How much test accuracy fell (negative: it rose); 0 if it did not change."""
    accuracy = changes.get(TEST_METRICS, {}).get("accuracy")
    if not accuracy or accuracy.get("old") is None or accuracy.get("new") is None:
        return 0.0
    return accuracy["old"] - accuracy["new"]


def review_against(base: str) -> None:
    """Print param and metric changes against `base`; fail on an accuracy drop."""
    if not git_has(base):
        raise PipelineError(f"{base!r} is not a git revision: name the branch to compare with")
    if not git_has(base, TEST_METRICS):
        print(f"{base} has no metrics yet ({TEST_METRICS} is not committed there): nothing to")
        print("compare with. This change's metrics will be the first; they are:\n")
        print(dvc("metrics", "show", "--md"))
        return
    print(f"## Params changed against {base}\n")
    print(dvc("params", "diff", base, "--md") or "No param changed.\n")
    print(f"## Metrics changed against {base}\n")
    print(dvc("metrics", "diff", base, "--md") or "No metric changed.\n")
    drop = accuracy_drop(metric_changes(base))
    if drop > MAX_ACCURACY_DROP:
        raise ReviewFailed(
            f"test accuracy dropped by {100 * drop:.2f} points against {base} (the limit is "
            f"{100 * MAX_ACCURACY_DROP:.2f}, MAX_ACCURACY_DROP in sentiment/review.py)"
        )
    print(f"Test accuracy moved by {-100 * drop:+.2f} points against {base}: within the limit.")


def moved_metrics(changes: dict[str, dict[str, dict]], tolerance: float) -> list[str]:
    """'file: metric old -> new' for each metric that moved by more than `tolerance`."""
    moved = []
    for path, metrics in sorted(changes.items()):
        for name, change in sorted(metrics.items()):
            old, new = change.get("old"), change.get("new")
            if old is None or new is None or abs(new - old) > tolerance:
                moved.append(f"{path}: {name} {old} -> {new}")
    return moved


def stale_stages(status: dict[str, list]) -> dict[str, list]:
    """The entries of `dvc status --json` that are more than a byte-unreproducible output."""
    stale = {}
    for stage, entries in status.items():
        problems = []
        for entry in entries:
            if not isinstance(entry, dict):
                problems.append(entry)
                continue
            for kind, changes in entry.items():
                if kind == "changed outs":
                    changes = {p: c for p, c in changes.items() if p not in NOT_BYTE_REPRODUCIBLE}
                if changes:
                    problems.append({kind: changes})
        if problems:
            stale[stage] = problems
    return stale


def check_reproduction() -> None:
    """After `dvc repro`: metrics equal to HEAD's, and HEAD's dvc.lock describes this run."""
    lock = Path("dvc.lock")
    if not git_has("HEAD", TEST_METRICS) or not git_has("HEAD", "dvc.lock"):
        raise PipelineError("HEAD has no committed dvc.lock and metrics: commit a real run first")
    changes = metric_changes("HEAD", include_unchanged=True)
    moved = moved_metrics(changes, REPRODUCTION_TOLERANCE)
    checked = sum(len(metrics) for metrics in changes.values())
    reproduced_lock = lock.read_bytes()
    committed_lock = subprocess.run(
        ["git", "show", "HEAD:dvc.lock"], capture_output=True, check=True
    ).stdout
    try:
        lock.write_bytes(committed_lock)
        stale = stale_stages(json.loads(dvc("status", "--json") or "{}"))
    finally:
        lock.write_bytes(reproduced_lock)
    if moved:
        print(dvc("metrics", "diff", "HEAD", "--md"))
        raise ReviewFailed(
            f"{len(moved)} committed metric(s) did not reproduce (tolerance "
            f"{REPRODUCTION_TOLERANCE}): {'; '.join(moved[:5])}. The committed metrics were not "
            "made by this commit's code: run `dvc repro` and commit dvc.lock and metrics/"
        )
    if stale:
        stages = ", ".join(sorted(stale))
        raise ReviewFailed(
            f"the committed dvc.lock does not match what this commit's code produces (stages: "
            f"{stages}; {json.dumps(stale)}): run `dvc repro` and commit dvc.lock and metrics/"
        )
    print(
        f"reproduced: all {checked} committed metrics equal (tolerance {REPRODUCTION_TOLERANCE}); "
        f"dvc status against the committed dvc.lock: up to date (bytes of "
        f"{', '.join(NOT_BYTE_REPRODUCIBLE)} not compared)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base", nargs="?", default="main", help="revision to compare with")
    parser.add_argument(
        "--check-reproduction",
        action="store_true",
        help="after `dvc repro`: committed metrics and dvc.lock must be reproduced exactly",
    )
    args = parser.parse_args()
    try:
        check_reproduction() if args.check_reproduction else review_against(args.base)
    except ReviewFailed as failure:
        print(f"review failed: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)
