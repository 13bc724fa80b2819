"""The SVG pictures: real vl-convert, parsed back, holding the data they were drawn from."""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from sentiment.classifier.evaluation.report import FIGURES, markdown_report
from sentiment.errors import PipelineError
from sentiment.proof.figures import (
    SIZE_PX,
    confusion_counts,
    confusion_spec,
    curves_spec,
    pipeline_specs,
    render_svg,
)
from tests.conftest import PROJECT_ROOT, planted_comparison

SVG = "{http://www.w3.org/2000/svg}"
ROC = [
    {"fpr": 0.0, "tpr": 0.0},
    {"fpr": 0.05, "tpr": 0.4},
    {"fpr": 0.2, "tpr": 0.85},
    {"fpr": 0.6, "tpr": 0.97},
    {"fpr": 1.0, "tpr": 1.0},
]


def marks(svg: str, kind: str) -> list[ET.Element]:
    """The SVG's marks of one kind ('line mark', 'point', 'rect mark'), or its texts ('text')."""
    root = ET.fromstring(svg)  # also proves the SVG is well-formed XML
    return [e for e in root.iter(f"{SVG}path") if e.get("aria-roledescription") == kind] + [
        e for e in root.iter(f"{SVG}text") if kind == "text" and e.text
    ]


def vertices(path_data: str) -> list[tuple[float, float]]:
    """The points of an SVG path made of M and L commands."""
    numbers = [float(n) for n in re.findall(r"-?[\d.]+(?:e-?\d+)?", path_data)]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def write_plot_data(plots: Path, curves: Path) -> None:
    """evaluate's and train's plot files, small."""
    plots.mkdir(parents=True)
    (plots / "roc.json").write_text(json.dumps(ROC))
    pr = [{"recall": 1.0, "precision": 0.5}, {"recall": 0.5, "precision": 0.9}]
    (plots / "precision_recall.json").write_text(json.dumps(pr))
    rows = ["actual,predicted"] + ["negative,negative"] * 7 + ["positive,negative"] * 2
    rows += ["positive,positive"] * 11
    (plots / "confusion.csv").write_text("\n".join(rows) + "\n")
    for split, loss in (("train", [0.69, 0.41, 0.25]), ("eval", [0.6, 0.45, 0.43])):
        (curves / split).mkdir(parents=True)
        lines = ["step\tloss"] + [f"{step}\t{value}" for step, value in enumerate(loss)]
        (curves / split / "loss.tsv").write_text("\n".join(lines) + "\n")
        lines = ["step\taccuracy"] + [f"{step}\t{1 - value / 2}" for step, value in enumerate(loss)]
        (curves / split / "accuracy.tsv").write_text("\n".join(lines) + "\n")


def test_every_figure_is_one_of_dvc_yamls_plots_under_the_same_title():
    declared = {
        next(iter(plot))
        for plot in yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["plots"]
    }
    assert set(FIGURES.values()) == declared


def test_the_roc_pictures_line_passes_through_every_point_of_the_curve():
    spec = curves_spec(
        {"test": ROC}, x="fpr", y="tpr", title="ROC", x_title="fpr", y_title="tpr", unit_square=True
    )
    (line,) = marks(render_svg(spec), "line mark")
    # unit square: x pixel = fpr * size, y pixel = (1 - tpr) * size
    drawn = [(x / SIZE_PX, 1 - y / SIZE_PX) for x, y in vertices(line.get("d"))]
    assert len(drawn) == len(ROC)
    for (fpr, tpr), row in zip(drawn, ROC, strict=True):
        assert (fpr, tpr) == pytest.approx((row["fpr"], row["tpr"]), abs=1e-3)


def test_the_training_curves_picture_marks_every_epoch_of_both_sets(tmp_path):
    write_plot_data(tmp_path / "plots", tmp_path / "curves")
    svg = render_svg(pipeline_specs(plots=tmp_path / "plots", curves=tmp_path / "curves")["loss"])
    assert len(marks(svg, "line mark")) == 2
    labels = [point.get("aria-label") for point in marks(svg, "point")]
    for value in (0.69, 0.41, 0.25, 0.6, 0.45, 0.43):
        assert sum(f"loss: {value};" in label for label in labels) == 1, value
    assert {"fit reviews", "validation reviews"} <= {text.text for text in marks(svg, "text")}


def test_the_confusion_picture_writes_each_cells_count():
    counts = confusion_counts(
        "actual,predicted\n" + "negative,positive\n" * 3 + "positive,positive\n"
    )
    assert counts == [
        {"actual": "negative", "predicted": "negative", "count": 0},
        {"actual": "negative", "predicted": "positive", "count": 3},
        {"actual": "positive", "predicted": "negative", "count": 0},
        {"actual": "positive", "predicted": "positive", "count": 1},
    ]
    svg = render_svg(confusion_spec(counts, title="Confusion"))
    assert len(marks(svg, "rect mark")) == 4
    cells = [text.text for text in marks(svg, "text") if text.get("font-size") == "16px"]
    assert sorted(cells) == ["0", "0", "1", "3"]


def test_the_same_spec_gives_the_same_bytes_in_one_process_and_in_another():
    spec = curves_spec({"a": ROC}, x="fpr", y="tpr", title="t", x_title="x", y_title="y")
    first, again = render_svg(spec), render_svg(spec)  # Vega's clip-path counter moved on
    assert first == again
    script = (
        "import json, sys; from sentiment.proof.figures import render_svg; "
        "sys.stdout.write(render_svg(json.loads(sys.argv[1])))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, json.dumps(spec)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout == first


def test_the_figures_stage_writes_a_picture_per_figure_that_the_report_embeds(tmp_path):
    plots, curves, output = tmp_path / "plots", tmp_path / "curves", tmp_path / "metrics/figures"
    write_plot_data(plots, curves)
    labels = tmp_path / "labels.txt"
    labels.write_text("negative\npositive\n")
    command = [
        sys.executable,
        "-m",
        "stages.figures",
        "--plots",
        str(plots),
        "--curves",
        str(curves),
        "--labels",
        str(labels),
    ]
    subprocess.run(
        [*command, "--output", str(output)], cwd=PROJECT_ROOT, check=True, capture_output=True
    )
    assert sorted(path.name for path in output.iterdir()) == sorted(
        f"{name}.svg" for name in FIGURES
    )
    for path in output.iterdir():
        assert ET.parse(path).getroot().tag == f"{SVG}svg"
    metrics = json.loads((PROJECT_ROOT / "metrics/test.json").read_text())
    baseline = json.loads((PROJECT_ROOT / "metrics/baseline.json").read_text())
    labels = np.array([0, 1, 1, 0])
    comparison = planted_comparison(
        labels, np.array([0.2, 0.9, 0.6, 0.4]), ["negative", "positive"]
    )
    report = markdown_report(metrics, baseline, [], comparison=comparison, figures_folder="figures")
    embedded = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert [tmp_path / "metrics" / link for link in embedded] == [
        output / f"{name}.svg" for name in FIGURES
    ]


def test_the_committed_report_embeds_the_committed_figures():
    report = (PROJECT_ROOT / "metrics/report.md").read_text()
    for name, title in FIGURES.items():
        assert f"![{title}](figures/{name}.svg)" in report
        assert (PROJECT_ROOT / "metrics/figures" / f"{name}.svg").is_file()


def test_graded_labels_keep_their_order_in_the_confusion_matrix():
    rows = "actual,predicted\n" + "low,high\nhigh,high\nmiddling,low\n"
    order = ["low", "middling", "high"]
    spec = confusion_spec(confusion_counts(rows), title="t", order=order)
    assert spec["encoding"]["x"]["sort"] == order == spec["encoding"]["y"]["sort"]
    svg = render_svg(spec)
    first_drawn = [svg.index(f">{label}<") for label in order]
    assert first_drawn == sorted(first_drawn)  # each axis lists the grades low to high
    alphabetical = confusion_spec(confusion_counts(rows), title="t", order=sorted(order))
    assert "sort" not in alphabetical["encoding"]["x"]  # the two-label figures stay as they were


def test_missing_plot_data_stops_the_stage_naming_the_file(tmp_path):
    with pytest.raises(PipelineError, match=r"roc\.json.*run train and evaluate first"):
        pipeline_specs(plots=tmp_path / "plots", curves=tmp_path / "curves")


@pytest.mark.slow
def test_review_with_figures_draws_the_bases_curve_beside_the_branchs(tmp_path):
    env = os.environ | {
        "PYTHONPATH": str(PROJECT_ROOT),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }

    def run(*command):
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def commit(roc, message):
        (tmp_path / "metrics/plots/roc.json").write_text(json.dumps(roc))
        run("git", "add", "-A")
        run("git", "commit", "-qm", message)

    run("git", "init", "-q", "-b", "main")
    run(sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "metrics/plots").mkdir(parents=True)
    (tmp_path / "metrics/test.json").write_text('{"accuracy": 0.9}')
    (tmp_path / "dvc.yaml").write_text(
        "metrics: [metrics/test.json]\n"
        "plots:\n  - ROC curve (test):\n      x: fpr\n"
        "      y:\n        metrics/plots/roc.json: tpr\n"
    )
    commit(ROC, "base")
    run("git", "checkout", "-qb", "change")
    commit([{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.5, "tpr": 0.7}, {"fpr": 1.0, "tpr": 1.0}], "change")

    output = run(sys.executable, "-m", "sentiment", "compare", "main", "--figures", "figures")
    assert "## Plots against main" in output
    assert "![ROC curve (test)](figures/roc.svg)" in output
    svg = (tmp_path / "figures/roc.svg").read_text()
    # DVC's template draws each revision's line in two layers; both revisions are there
    revisions = {line.get("aria-label").split("rev: ")[1] for line in marks(svg, "line mark")}
    assert revisions == {"main", "workspace"}
    assert {"main", "workspace"} <= {text.text for text in marks(svg, "text")}
