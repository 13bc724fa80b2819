"""Compare a change with a base revision as a pull request is reviewed: by DVC's own diffs, beside
the measured noise.

Usage:
  sentiment compare [BASE]                # this branch against BASE (default: main)
  sentiment compare BASE --figures DIR    # ... and both revisions' plots as SVG in DIR
  sentiment compare BASE --markdown FILE  # the same, also written to FILE (CI's comment)

It prints markdown a pull-request comment can paste: the params and metrics that changed, then
the headline metrics' changes beside the seed noise measured in metrics/noise.json (`sentiment
measure-noise`), the shipped model's first, and fails when the shipped model's test accuracy (the
network's, against a base that ships nothing else) drops by more than the regression gate
(`accuracy_gate`). With --figures it also draws `dvc plots diff BASE` (the base's curves beside
the branch's) as SVG pictures in DIR and embeds them by that path (proof/figures.py).

Exit status: 0 fine, 1 the change fails the gate, 2 it cannot be compared.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import yaml

from sentiment.errors import CheckFailed, PipelineError
from sentiment.files import write_text
from sentiment.proof.data_changes import data_section
from sentiment.proof.records import (
    HEADLINE_METRICS,
    METRICS_FILES,
    NOISE_FILE,
    SHIPPED_METRICS,
    TEST_METRICS,
    lookup,
)
from sentiment.proof.reproduction import params_measured_differently
from sentiment.tools import dvc, dvc_json, git_has, git_show

# Without a noise record, a change may cost at most this much test accuracy (half a point).
MAX_ACCURACY_DROP = 0.005
# A change is told from noise at this many standard deviations of the difference of two runs.
NOISE_BAND_SIGMAS = 2.0
# Metrics for which a fall is the improvement.
LOWER_IS_BETTER = {"log_loss", "eval.loss", "train.loss"}
# The test accuracy the gate holds, the first both revisions have: the shipped model's, else the
# network's (a base from before the shipped model's metrics existed) -> what it is called.
GATED_ACCURACY = {
    SHIPPED_METRICS: "the shipped model's test accuracy",
    TEST_METRICS: "the network's test accuracy",
}


def metric_changes(base: str, include_unchanged: bool = False) -> dict[str, dict[str, dict]]:
    """{metrics file: {metric: {old, new, diff}}} between `base` and the workspace."""
    return dvc_json("metrics", "diff", base, *(["--all"] if include_unchanged else []))


def changed_only(changes: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """`metric_changes(..., include_unchanged=True)` without the metrics that did not change."""
    changed = {
        path: {name: c for name, c in metrics.items() if c.get("old") != c.get("new")}
        for path, metrics in changes.items()
    }
    return {path: metrics for path, metrics in changed.items() if metrics}


def gated_file(changes: dict[str, dict[str, dict]]) -> str:
    """The metrics file whose test accuracy the gate holds (GATED_ACCURACY): the first whose
    accuracy both revisions have."""
    for path in GATED_ACCURACY:
        accuracy = changes.get(path, {}).get("accuracy") or {}
        if accuracy.get("old") is not None and accuracy.get("new") is not None:
            return path
    return TEST_METRICS


def accuracy_drop(changes: dict[str, dict[str, dict]]) -> float:
    """How much the gated test accuracy fell (negative: it rose); 0 if it did not change."""
    accuracy = changes.get(gated_file(changes), {}).get("accuracy")
    if not accuracy or accuracy.get("old") is None or accuracy.get("new") is None:
        return 0.0
    return accuracy["old"] - accuracy["new"]


def metrics_table(changes: dict[str, dict[str, dict]], base: str) -> str:
    """Markdown of the metrics that changed, as `dvc metrics diff --md` prints them but in a fixed
    order: the files of METRICS_FILES in that order (the shipped model's first), then any other,
    each file's metrics sorted. DVC itself lists the files in no fixed order."""
    order = [path for path in METRICS_FILES if path in changes]
    order += sorted(set(changes) - set(order))
    rows = [f"| Path | Metric | {base} | workspace | Change |", "|---|---|---|---|---|"]
    for path in order:
        for name, change in sorted(changes[path].items()):
            cells = [_shown(change.get(key)) for key in ("old", "new", "diff")]
            rows.append(f"| {path} | {name} | {' | '.join(cells)} |")
    return "\n".join(rows) + "\n" if len(rows) > 2 else ""


def _shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)


def noise_record(base: str) -> tuple[dict | None, str]:
    """The noise record measured for the base's configuration (the base's, else the work tree's),
    or None and why there is none: a band measured for other params or another dataset does not
    tell this configuration's noise."""
    raw = git_show(NOISE_FILE, base)
    if raw is None and Path(NOISE_FILE).exists():
        raw = Path(NOISE_FILE).read_bytes()
    if raw is None:
        return None, f"there is no {NOISE_FILE}"
    record = json.loads(raw)
    base_params = yaml.safe_load(git_show("params.yaml", base) or b"{}") or {}
    wanted = {key: value for key, value in base_params.items() if key != "seed"}
    differ = params_measured_differently(record.get("params", {}), wanted)
    if differ:
        return None, f"{NOISE_FILE} was measured for other params ({', '.join(differ)})"
    return record, ""


def noise_band(std: float) -> float:
    """Half-width of the band a difference between two seeds stays in: 2 sigma of a difference.

    Two independent runs differ by a random amount of standard deviation sqrt(2) * sigma.
    """
    return NOISE_BAND_SIGMAS * math.sqrt(2) * std


def accuracy_gate(noise: dict | None, path: str = SHIPPED_METRICS) -> tuple[float, str]:
    """The largest drop of `path`'s test accuracy a change may show, and where the number comes
    from.

    With a noise record it is the noise band of test accuracy: a change that only reseeds the
    run fails review about once in 44 (one-sided 2 sigma), and a drop beyond it is unlikely to be
    noise. Without one it is MAX_ACCURACY_DROP.
    """
    spread = (noise or {}).get("metrics", {}).get(path, {}).get("accuracy")
    if spread is None:
        return MAX_ACCURACY_DROP, "MAX_ACCURACY_DROP in sentiment/proof/comparison.py"
    seeds = len(spread["values"])
    return noise_band(spread["std"]), f"the noise band of {NOISE_FILE}, {seeds} seeds"


def noise_table(
    changes: dict[str, dict[str, dict]], noise: dict | None, base: str, no_noise_because: str = ""
) -> str:
    """Markdown: each headline metric's change beside the band seed noise alone would give; with
    no record for the base's configuration, says so and claims no band."""
    if noise is None:
        why = no_noise_because or f"there is no {NOISE_FILE}"
        return (
            f"No noise record for {base}'s configuration ({why}), so no change is told from "
            "seed noise here: measure one with `sentiment measure-noise`. Until then the gate is "
            f"a fixed {100 * MAX_ACCURACY_DROP:.2f} points of test accuracy.\n"
        )
    seeds = len(noise.get("seeds", []))
    rows = [
        f"| metric | {base} | this change | change | seed noise (±2 sd of a difference, "
        f"{seeds} seeds) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for (path, name), label in HEADLINE_METRICS.items():
        entries = changes.get(path, {})
        old = lookup({metric: entry.get("old") for metric, entry in entries.items()}, name)
        new = lookup({metric: entry.get("new") for metric, entry in entries.items()}, name)
        spread = lookup(noise["metrics"].get(path, {}), name)
        if old is None or new is None or not spread:
            continue
        band = noise_band(spread["std"])
        rows.append(
            f"| {label} | {old:.4f} | {new:.4f} | {_points(new - old, name)} | "
            f"±{_points(band, name, signed=False)} | {_verdict(new - old, band, name)} |"
        )
    return "\n".join(rows) + "\n"


def _points(value: float, name: str, signed: bool = True) -> str:
    """Accuracy-like metrics in percentage points, losses as they are."""
    sign = "+" if signed else ""
    if name in LOWER_IS_BETTER:
        return f"{value:{sign}.4f}"
    return f"{100 * value:{sign}.2f} points"


def _verdict(difference: float, band: float, name: str) -> str:
    if abs(difference) <= band:
        return "within noise"
    better = (difference < 0) if name in LOWER_IS_BETTER else (difference > 0)
    return "**better** beyond noise" if better else "**worse** beyond noise"


def compare_with(base: str, figures: Path | None = None) -> tuple[str, str | None]:
    """The comparison's markdown against `base`, and why it fails (None when it passes).

    The markdown is params and metrics changes, then the headline metrics beside the noise, (with
    `figures`, both revisions' plots drawn as SVG files in that folder), then the verdict: what a
    pull-request comment shows.
    """
    if not git_has(base):
        raise PipelineError(f"{base!r} is not a git revision: name the branch to compare with")
    if not git_has(base, TEST_METRICS):
        return (
            f"{base} has no metrics yet ({TEST_METRICS} is not committed there): nothing to\n"
            "compare with. This change's metrics will be the first; they are:\n\n"
            + dvc("metrics", "show", "--md")
        ), None
    changes = metric_changes(base, include_unchanged=True)
    parts = [
        f"## Params changed against {base}\n",
        dvc("params", "diff", base, "--md") or "No param changed.\n",
        f"## Metrics changed against {base}\n",
        metrics_table(changed_only(changes), base) or "No metric changed.\n",
    ]
    parts.append(data_section(base))
    noise, no_noise_because = noise_record(base)
    parts += ["## Against the noise\n", noise_table(changes, noise, base, no_noise_because)]
    if figures is not None:
        from sentiment.proof.figures import figures_markdown, write_diff_figures

        drawn = write_diff_figures(dvc_json("plots", "diff", base), figures)
        parts += [f"## Plots against {base}\n", figures_markdown(drawn, base)]
    gated = gated_file(changes)
    drop = accuracy_drop(changes)
    gate, source = accuracy_gate(noise, gated)
    if drop > gate:
        return "\n".join(parts), (
            f"{GATED_ACCURACY[gated]} dropped by {100 * drop:.2f} points against {base} (the "
            f"limit is {100 * gate:.2f}: {source})"
        )
    moved = GATED_ACCURACY[gated][0].upper() + GATED_ACCURACY[gated][1:]
    parts.append(
        f"{moved} moved by {-100 * drop:+.2f} points against {base}: within the limit "
        f"({100 * gate:.2f} points: {source})."
    )
    return "\n".join(parts), None


def write_comparison(path: Path, markdown: str, failure: str | None) -> None:
    """The comparison as one markdown file (a pull-request comment's body), the verdict last."""
    verdict = f"\n**Review failed:** {failure}\n" if failure else ""
    write_text(path, markdown.rstrip("\n") + "\n" + verdict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """compare's command line."""
    parser.add_argument("base", nargs="?", default="main", help="revision to compare with")
    parser.add_argument(
        "--figures",
        type=Path,
        metavar="DIR",
        help="also draw both revisions' plots as SVG files in DIR, embedded in the markdown",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="also write the comparison to FILE (a pull-request comment's body); the exit "
        "status is the same",
    )


def run(args: argparse.Namespace) -> None:
    """Print the comparison with BASE; fail when test accuracy drops beyond the gate."""
    markdown, failure = compare_with(args.base, figures=args.figures)
    print(markdown)
    if args.markdown:
        write_comparison(args.markdown, markdown, failure)
    if failure:
        raise CheckFailed(failure)
