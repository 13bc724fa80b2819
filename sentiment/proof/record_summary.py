"""Recorded runs side by side: each metric over the runs, its mean and range, and targets met.

Usage:
  sentiment records ensemble-2-unlabelled-word2vec ensemble-2-unlabelled-word2vec-seed-44 \\
      --target 'metrics/test.json:accuracy>=0.92' --target 'metrics/blend.json:accuracy>=0.925'
  sentiment records NAME... --metric metrics/test.json:roc_auc --figure seeds.svg

Each NAME is a record in metrics/records/ (`sentiment record` wrote it) or a path to one. Prints a
Markdown table: a row per record (its seed and ensemble size from its params, each metric, the
train stage's seconds), then the mean, the lowest and the highest. A metric is FILE:KEY, KEY as
`dvc metrics show` names it; by default the saved model's validation accuracy and the test
accuracy of the network and of the blend. A target (FILE:KEY>=VALUE or <=VALUE) is met only if
every record meets it, as a configuration confirmed over seeds must: the command says how many
do, and exits 1 if any target is missed. --figure draws the same as SVG: a dot per record and
metric, a tick at each target.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from sentiment.errors import CheckFailed, PipelineError
from sentiment.files import write_text
from sentiment.proof.records import (
    BLEND_METRICS,
    HEADLINE_METRICS,
    SAVED_VALIDATION_ACCURACY,
    TEST_METRICS,
    TRAIN_METRICS,
    lookup,
)
from sentiment.proof.run_record import RECORDS

DEFAULT_METRICS = (
    (TRAIN_METRICS, SAVED_VALIDATION_ACCURACY),
    (TEST_METRICS, "accuracy"),
    (BLEND_METRICS, "accuracy"),
)
LABELS = HEADLINE_METRICS | {(BLEND_METRICS, "accuracy"): "blend: test accuracy"}
TARGET = re.compile(r"^(?P<metric>[^:]+:[^<>=]+?)\s*(?P<op>>=|<=)\s*(?P<value>[-+0-9.eE]+)$")


@dataclass(frozen=True)
class Target:
    """A bound one metric must meet in every record."""

    metric: tuple[str, str]
    op: str  # ">=" or "<="
    value: float

    def met(self, value: float) -> bool:
        return value >= self.value if self.op == ">=" else value <= self.value

    def __str__(self) -> str:
        return f"{label(self.metric)} {self.op} {self.value:g}"


def label(metric: tuple[str, str]) -> str:
    """How a metric is named in the table: its headline name, else FILE:KEY."""
    return LABELS.get(metric, f"{metric[0]}:{metric[1]}")


def parse_metric(text: str) -> tuple[str, str]:
    """FILE:KEY -> (FILE, KEY), or a one-line error that shows the form."""
    file, _, key = text.partition(":")
    if not file.endswith(".json") or not key:
        raise PipelineError(
            f"metric {text!r}: write it FILE:KEY, e.g. metrics/test.json:accuracy "
            "(KEY as `dvc metrics show` names it)"
        )
    return file, key


def parse_target(text: str) -> Target:
    """FILE:KEY>=VALUE (or <=) -> Target, or a one-line error that shows the form."""
    match = TARGET.match(text.strip())
    if not match:
        raise PipelineError(
            f"target {text!r}: write it FILE:KEY>=VALUE or FILE:KEY<=VALUE, "
            "e.g. 'metrics/test.json:accuracy>=0.92' (quoted for the shell)"
        )
    return Target(parse_metric(match["metric"]), match["op"], float(match["value"]))


def read_record(name: str, records: Path = RECORDS) -> tuple[str, dict]:
    """(the record's name, its contents) for a name in `records` or a path to a record."""
    path = Path(name) if name.endswith(".json") else records / f"{name}.json"
    if not path.exists():
        raise PipelineError(
            f"no record {path}: give a name from {records}/ (ls {records}) or a record's path"
        )
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path} is not JSON ({error}): is it a record?") from None
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        raise PipelineError(f"{path} has no metrics: not a record that `sentiment record` wrote")
    return path.stem, record


def metric_value(record: dict, metric: tuple[str, str]) -> float | None:
    """The record's value of FILE:KEY (or what stands in for it), None if it has none."""
    return lookup(record["metrics"].get(metric[0], {}), metric[1])


def train_seconds(record: dict) -> float | None:
    """The train stage's wall time in the record, None if the command did not run it."""
    times = [
        stage["wall_s"] for stage in record.get("stage_times", []) if stage["stage"] == "train"
    ]
    return times[-1] if times else None


def summary(
    records: list[tuple[str, dict]], metrics: list[tuple[str, str]], targets: list[Target]
) -> tuple[str, list[tuple[str, bool]]]:
    """The Markdown table of the records and their statistics, and each target's verdict: its
    line and whether every record meets it."""
    columns = ["record", "seed", "ensemble", *map(label, metrics), "train stage (s)"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    values: dict[tuple[str, str], list[float]] = {metric: [] for metric in metrics}
    for name, record in records:
        params = record.get("params") or {}
        cells = [name, str(params.get("seed", "")), str(params.get("ensemble", 1))]
        for metric in metrics:
            value = metric_value(record, metric)
            cells.append("—" if value is None else f"{value:g}")
            if value is not None:
                values[metric].append(value)
        seconds = train_seconds(record)
        cells.append("—" if seconds is None else f"{seconds:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    for statistic, compute in (("mean", statistics.fmean), ("lowest", min), ("highest", max)):
        cells = [statistic, "", ""]
        cells += [f"{compute(values[m]):.6g}" if values[m] else "—" for m in metrics]
        lines.append("| " + " | ".join([*cells, ""]) + " |")
    verdicts = []
    for target in targets:
        found = values[target.metric]
        meeting = sum(target.met(value) for value in found)
        if not found:
            verdicts.append((f"{target}: no record has this metric — missed", False))
            continue
        met = meeting == len(records)
        verdicts.append(
            (
                f"{target}: {meeting} of {len(records)} records, mean "
                f"{statistics.fmean(found):.6g} — {'met' if met else 'missed'}",
                met,
            )
        )
    return "\n".join(lines) + "\n", verdicts


def figure_spec(
    records: list[tuple[str, dict]], metrics: list[tuple[str, str]], targets: list[Target]
) -> dict:
    """A Vega-Lite dot chart: a row per metric, a dot per record, a tick at each target."""
    dots = [
        {"metric": label(metric), "record": name, "value": value}
        for metric in metrics
        for name, record in records
        if (value := metric_value(record, metric)) is not None
    ]
    ticks = [{"metric": label(target.metric), "target": target.value} for target in targets]
    order = [label(metric) for metric in metrics]
    y = {
        "field": "metric",
        "type": "nominal",
        "sort": order,
        "title": None,
        "axis": {"labelLimit": 400},
    }
    layers = [
        {
            "data": {"values": dots},
            "mark": {"type": "point", "filled": True, "size": 80, "opacity": 0.8},
            "encoding": {
                "y": y,
                "x": {
                    "field": "value",
                    "type": "quantitative",
                    "scale": {"zero": False},
                    "title": "value (ticks: the targets)",
                },
                "color": {"field": "record", "type": "nominal"},
            },
        }
    ]
    if ticks:
        layers.append(
            {
                "data": {"values": ticks},
                "mark": {"type": "tick", "color": "black", "thickness": 2},
                "encoding": {"y": y, "x": {"field": "target", "type": "quantitative"}},
            }
        )
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Recorded runs",
        "width": 420,
        "layer": layers,
        "config": {"legend": {"orient": "bottom", "columns": 1, "labelLimit": 600}},
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """records' command line."""
    parser.add_argument("names", nargs="+", metavar="NAME", help="records to put side by side")
    parser.add_argument(
        "--metric", action="append", default=[], help="FILE:KEY to show (repeatable)"
    )
    parser.add_argument(
        "--target", action="append", default=[], help="FILE:KEY>=VALUE every record must meet"
    )
    parser.add_argument("--figure", type=Path, help="also draw the runs as SVG to this file")


def run(args: argparse.Namespace) -> None:
    """Print the table and the targets' verdicts; exit 1 if a target is missed."""
    metrics = [parse_metric(text) for text in args.metric] or list(DEFAULT_METRICS)
    targets = [parse_target(text) for text in args.target]
    metrics += [t.metric for t in targets if t.metric not in metrics]
    records = [read_record(name) for name in args.names]
    table, verdicts = summary(records, metrics, targets)
    print(table + "".join(f"\n{line}" for line, _ in verdicts))
    if args.figure:
        from sentiment.proof.figures import render_svg

        write_text(args.figure, render_svg(figure_spec(records, metrics, targets)))
    missed = [line for line, met in verdicts if not met]
    if missed:
        raise CheckFailed(f"{len(missed)} of {len(targets)} targets missed: {missed[0]}")
