"""Static SVG pictures of the plots, for places that show images but run no JavaScript.

GitHub shows an SVG committed under metrics/ in a pull request's file view, and `dvc plots
show` needs a browser. So the figures stage renders the pipeline's curves to SVG here: each
figure is a Vega-Lite spec built by a pure function from the plot data, drawn offline by
vl-convert. The comparison with a base renders DVC's own filled specs (`dvc plots diff BASE`), where
the base's curves are drawn beside the branch's.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

from sentiment.classifier.evaluation.figure_titles import FIGURES
from sentiment.errors import PipelineError

# The newest Vega-Lite 5 that vl-convert ships: DVC's templates write Vega-Lite 5 specs.
VEGA_LITE_VERSION = "5.21"
SIZE_PX = 300
# Legend names of the two sets of reviews a training curve is measured on.
CURVE_SERIES = {"train": "fit reviews", "eval": "validation reviews"}


def curves_spec(
    series: dict[str, list[dict]],
    *,
    x: str,
    y: str,
    title: str,
    x_title: str,
    y_title: str,
    unit_square: bool = False,
    points: bool = False,
    whole_x: bool = False,
) -> dict:
    """A line chart of one or more named curves; `series` maps a legend name to its rows.

    unit_square fixes both axes to [0, 1] (ROC and precision-recall), so a picture's pixels map
    back to the data with no knowledge of the data. whole_x ticks x at whole numbers (epochs).
    """
    values = [
        {x: row[x], y: row[y], "series": name} for name, rows in series.items() for row in rows
    ]
    scale = {"domain": [0, 1]} if unit_square else {"zero": False}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": SIZE_PX,
        "height": SIZE_PX,
        "data": {"values": values},
        "mark": {"type": "line", "point": points},
        "encoding": {
            "x": {
                "field": x,
                "type": "quantitative",
                "title": x_title,
                "scale": scale,
                **({"axis": {"tickMinStep": 1, "format": "d"}} if whole_x else {}),
            },
            "y": {"field": y, "type": "quantitative", "title": y_title, "scale": scale},
            # the legend keeps the order series were given in, not alphabetical order
            "color": {"field": "series", "type": "nominal", "title": None, "sort": list(series)},
        },
    }


def confusion_counts(csv_text: str) -> list[dict]:
    """{actual, predicted, count} for every pair of labels, from one CSV row per review."""
    rows = list(csv.DictReader(csv_text.splitlines()))
    counts = Counter((row["actual"], row["predicted"]) for row in rows)
    labels = sorted({label for pair in counts for label in pair})
    return [
        {"actual": actual, "predicted": predicted, "count": counts[actual, predicted]}
        for actual in labels
        for predicted in labels
    ]


def confusion_spec(counts: list[dict], *, title: str, order: list[str] | None = None) -> dict:
    """A heat map of the confusion matrix with each cell's count written in it; `order` lists
    the labels in their order where that is not alphabetical (graded labels, say)."""
    dark_from = max((cell["count"] for cell in counts), default=0) / 2  # white text on dark cells
    sort = {"sort": order} if order and order != sorted(order) else {}
    position = {
        "x": {
            "field": "predicted",
            "type": "nominal",
            "title": "predicted",
            "axis": {"labelAngle": 0},
            **sort,
        },
        "y": {"field": "actual", "type": "nominal", "title": "actual", **sort},
    }
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": SIZE_PX,
        "height": SIZE_PX,
        "data": {"values": counts},
        "encoding": position,
        "layer": [
            {
                "mark": "rect",
                "encoding": {"color": {"field": "count", "type": "quantitative", "title": None}},
            },
            {
                "mark": {"type": "text", "fontSize": 16, "fontWeight": "bold"},
                "encoding": {
                    "text": {"field": "count", "type": "quantitative", "format": ","},
                    "color": {
                        "condition": {"test": f"datum.count > {dark_from}", "value": "white"},
                        "value": "black",
                    },
                },
            },
        ],
    }


def read_tsv(path: Path) -> list[dict]:
    """DVCLive's step-per-row TSV as rows of numbers."""
    with path.open(newline="") as file:
        return [
            {key: float(value) for key, value in row.items()}
            for row in csv.DictReader(file, delimiter="\t")
        ]


def pipeline_specs(
    *, plots: Path, curves: Path, labels: list[str] | None = None
) -> dict[str, dict]:
    """{figure name: spec} of every figure in FIGURES, from evaluate's plots and train's curves.

    Args:
        plots: evaluate's folder (roc.json, precision_recall.json, confusion.csv).
        curves: DVCLive's metrics folder ({train,eval}/{loss,accuracy}.tsv).
        labels: the label names in their order (the confusion matrix's rows and columns).
    """
    needed = [plots / "roc.json", plots / "precision_recall.json", plots / "confusion.csv"]
    needed += [
        curves / split / f"{name}.tsv" for split in CURVE_SERIES for name in ("loss", "accuracy")
    ]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        raise PipelineError(f"no plot data at {', '.join(missing)}: run train and evaluate first")
    specs = {
        name: curves_spec(
            {
                label: read_tsv(curves / split / f"{name}.tsv")
                for split, label in CURVE_SERIES.items()
            },
            x="step",
            y=name,
            title=FIGURES[name],
            x_title="epoch (from 0)",
            y_title=name,
            points=True,
            whole_x=True,
        )
        for name in ("loss", "accuracy")
    }
    specs["roc"] = curves_spec(
        {"test reviews": json.loads((plots / "roc.json").read_text())},
        x="fpr",
        y="tpr",
        title=FIGURES["roc"],
        x_title="false positive rate",
        y_title="true positive rate",
        unit_square=True,
    )
    specs["precision_recall"] = curves_spec(
        {"test reviews": json.loads((plots / "precision_recall.json").read_text())},
        x="recall",
        y="precision",
        title=FIGURES["precision_recall"],
        x_title="recall",
        y_title="precision",
        unit_square=True,
    )
    specs["confusion"] = confusion_spec(
        confusion_counts((plots / "confusion.csv").read_text()),
        title=FIGURES["confusion"],
        order=labels,
    )
    return specs


def render_svg(spec: dict) -> str:
    """The spec drawn as SVG text; the same spec gives the same bytes, in any process."""
    import vl_convert

    return stable_ids(vl_convert.vegalite_to_svg(spec, vl_version=VEGA_LITE_VERSION))


def stable_ids(svg: str) -> str:
    """Renumber the SVG's element ids (Vega's clip paths) in order of appearance.

    Vega numbers clip paths with a counter that lives as long as the process, so the second
    picture drawn in a process would differ from the same picture drawn first; dvc.lock's
    hashes and the reproduction check need the same bytes.
    """
    ids = dict.fromkeys(re.findall(r'\bid="([A-Za-z_-]+\d+)"', svg))
    if not ids:
        return svg
    renamed = {old: f"figure-{index}" for index, old in enumerate(ids, start=1)}
    pattern = r'(?<=[#"])(' + "|".join(map(re.escape, renamed)) + r')(?=[")])'
    return re.sub(pattern, lambda match: renamed[match.group(1)], svg)


def figure_file(title: str) -> str:
    """The SVG's file name for a plot: FIGURES' name where it has one, else the title slugged."""
    names = {figure_title: name for name, figure_title in FIGURES.items()}
    return f"{names.get(title) or re.sub(r'[^a-z0-9]+', '_', title.lower()).strip('_')}.svg"


def diff_specs(plots_diff: dict) -> dict[str, dict]:
    """{plot title: filled Vega-Lite spec} from `dvc plots diff --json` (Vega plots only)."""
    return {
        title: entry["content"]
        for title, entries in plots_diff.get("data", {}).items()
        for entry in entries
        if entry.get("type") == "vega"
    }


def write_diff_figures(plots_diff: dict, folder: Path) -> dict[str, Path]:
    """Render each plot of `dvc plots diff --json` into `folder`; {title: SVG written}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for title, spec in diff_specs(plots_diff).items():
        path = folder / figure_file(title)
        path.write_text(render_svg(spec), encoding="utf-8")
        written[title] = path
    return written


def figures_markdown(figures: dict[str, Path], base: str) -> str:
    """Markdown embedding each picture: both revisions, in DVC's colours per revision."""
    if not figures:
        return f"No plots to draw against {base}.\n"
    lines = [
        f"Each picture draws {base}'s curves beside this change's (`dvc plots diff {base}`).",
        "",
    ]
    lines += [f"![{title}]({path.as_posix()})" for title, path in figures.items()]
    return "\n".join(lines) + "\n"
