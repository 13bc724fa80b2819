"""A tuning study's report: its verdict, the confirmation table, the trials, two SVG pictures."""

from __future__ import annotations

from pathlib import Path

from sentiment.files import write_text
from sentiment.proof.figures import SIZE_PX, render_svg

HISTORY_FIGURE = "history.svg"
PARAMS_FIGURE = "params.svg"
SHOWN_TRIALS = 15


def verdict(record: dict) -> str:
    """One sentence: who won, by how much, beyond what noise; or that nobody did."""
    confirmation = record["confirmation"]
    if confirmation is None:
        best = max(
            (t for t in record["trials"] if t["validation_accuracy"] is not None),
            key=lambda t: t["validation_accuracy"],
        )
        return (
            f"best trial {best['number']}: validation accuracy {best['validation_accuracy']:.4f} "
            "on one seed (not confirmed: --confirm-seeds 0 names no winner)"
        )
    default = confirmation["default"]["validation_accuracy"]
    seeds = len(confirmation["seeds"])
    if confirmation["winner"] is None:
        return (
            f"no configuration beat the default beyond seed noise (default validation accuracy "
            f"{default['mean']:.4f} ± {default['std']:.4f} over {seeds} seeds; one-sided Welch "
            f"t-test at {confirmation['significance']:.0%})"
        )
    winner = next(c for c in confirmation["candidates"] if c["trial"] == confirmation["winner"])
    accuracy = winner["validation_accuracy"]
    return (
        f"trial {winner['trial']} beats the default beyond seed noise: validation accuracy "
        f"{accuracy['mean']:.4f} ± {accuracy['std']:.4f} against {default['mean']:.4f} ± "
        f"{default['std']:.4f} over {seeds} seeds ({winner['difference'] * 100:+.2f} points, "
        f"p = {winner['p_value']:.3f})"
    )


def history_spec(record: dict) -> dict:
    """Each trial's validation accuracy in the order it ran, the best so far, the default."""
    points, best = [], None
    for trial in record["trials"]:
        value = trial["validation_accuracy"]
        if value is None:
            continue
        best = value if best is None else max(best, value)
        points.append({"trial": trial["number"], "accuracy": value, "best": best})
    layers = [
        {
            "mark": {"type": "point", "filled": True},
            "encoding": {
                "x": {"field": "trial", "type": "quantitative", "title": "trial"},
                "y": {
                    "field": "accuracy",
                    "type": "quantitative",
                    "title": "validation accuracy",
                    "scale": {"zero": False},
                },
            },
        },
        {
            "mark": {"type": "line", "interpolate": "step-after", "color": "#e45756"},
            "encoding": {
                "x": {"field": "trial", "type": "quantitative"},
                "y": {"field": "best", "type": "quantitative"},
            },
        },
    ]
    confirmation = record["confirmation"]
    if confirmation:
        mean = confirmation["default"]["validation_accuracy"]["mean"]
        layers.append(
            {
                "data": {"values": [{"default": mean}]},
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "gray"},
                "encoding": {"y": {"field": "default", "type": "quantitative"}},
            }
        )
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Validation accuracy by trial (red: best so far; dashed: default's mean)",
        "width": SIZE_PX * 2,
        "height": SIZE_PX,
        "data": {"values": points},
        "layer": layers,
    }


def params_spec(record: dict) -> dict:
    """One small chart per searched param: its value against the trial's validation accuracy."""
    charts = []
    for key, described in record["space"]["search"].items():
        values = [
            {"value": t["params"][key], "accuracy": t["validation_accuracy"]}
            for t in record["trials"]
            if t["validation_accuracy"] is not None and key in t["params"]
        ]
        numeric = " to " in described  # a range; choices are drawn as their own ticks
        x = {"field": "value", "type": "quantitative" if numeric else "ordinal", "title": key}
        if numeric and "log scale" in described:
            x["scale"] = {"type": "log"}
        elif numeric:
            x["scale"] = {"zero": False}
        charts.append(
            {
                "width": SIZE_PX * 2 // 3,
                "height": SIZE_PX * 2 // 3,
                "data": {"values": values},
                "mark": {"type": "point", "filled": True},
                "encoding": {
                    "x": x,
                    "y": {
                        "field": "accuracy",
                        "type": "quantitative",
                        "title": "validation accuracy",
                        "scale": {"zero": False},
                    },
                },
            }
        )
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Each searched param against validation accuracy",
        "concat": charts,
        "columns": 3,
    }


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _scores(scores: dict | None) -> str:
    if not scores or scores.get("accuracy") is None:
        return "n/a | n/a"
    return f"{scores['accuracy']:.4f} | {scores['roc_auc']:.4f}"


def markdown(record: dict, overlay: dict | None, folder: str) -> str:
    """The study's report.md."""
    confirmation = record["confirmation"]
    finished = [t for t in record["trials"] if t["validation_accuracy"] is not None]
    failed = [t for t in record["trials"] if t["state"] == "fail"]
    lines = [
        "# Tuning study",
        "",
        f"**{verdict(record)}.**",
        "",
        f"Command: `{record['command']}`, {record['date']}, commit {record['commit'][:7]}, "
        f"{record['cpu']}. Objective: {record['objective']}; the test split is read once, after "
        "the choice.",
        "",
        f"{len(finished)} trials finished ({len(failed)} failed), "
        f"{record['trial_minutes']['total']} trial-minutes in all, median "
        f"{record['trial_minutes']['median']} min a trial; the largest stage process reached "
        f"{record['peak_memory_mb']:,.0f} MB (sampled every 2 s).",
        "",
        "## Search space",
        "",
        "| param | searched |",
        "|---|---|",
        *(f"| `{key}` | {described} |" for key, described in record["space"]["search"].items()),
        *(
            f"| `{key}` | fixed at {_value(value)} |"
            for key, value in record["space"]["fixed"].items()
        ),
        "",
    ]
    if confirmation:
        seeds = ", ".join(map(str, confirmation["seeds"]))
        default = confirmation["default"]["validation_accuracy"]
        lines += [
            "## Confirmation over seeds",
            "",
            f"Seeds {seeds}: validation accuracy, mean ± standard deviation; p: one-sided Welch "
            f"t-test that the mean is above the default's (a winner needs p < "
            f"{confirmation['significance']}).",
            "",
            "| configuration | mean | sd | difference | p | beats the default |",
            "|---|---|---|---|---|---|",
            f"| default (params.yaml) | {default['mean']:.4f} | {default['std']:.4f} | | | |",
        ]
        for candidate in confirmation["candidates"]:
            accuracy = candidate["validation_accuracy"]
            changed = ", ".join(f"{k}={_value(v)}" for k, v in candidate["params"].items())
            lines.append(
                f"| trial {candidate['trial']}: {changed} | {accuracy['mean']:.4f} | "
                f"{accuracy['std']:.4f} | {candidate['difference'] * 100:+.2f} points | "
                f"{candidate['p_value']:.3f} | {'yes' if candidate['beats_default'] else 'no'} |"
            )
        test = confirmation["test"]
        chosen = test["chosen"]
        name = "the winner" if confirmation["winner"] is not None else "the best candidate"
        lines += [
            "",
            "## Test split, read once",
            "",
            "| model (seed " + str(confirmation["seeds"][0]) + ") | test accuracy | ROC AUC |",
            "|---|---|---|",
            f"| default | {_scores(test['default'])} |",
        ]
        if chosen:
            lines.append(f"| {name} (trial {chosen['trial']}) | {_scores(chosen)} |")
        lines += [f"| NBSVM baseline | {_scores(test['baseline'])} |", ""]
    lines += [
        "## Pictures",
        "",
        f"![history]({HISTORY_FIGURE})",
        "",
        f"![params]({PARAMS_FIGURE})",
        "",
        f"## Trials, best first ({min(SHOWN_TRIALS, len(finished))} of {len(finished)})",
        "",
        "| trial | validation accuracy | minutes | experiment | params |",
        "|---|---|---|---|---|",
    ]
    for trial in sorted(finished, key=lambda t: -t["validation_accuracy"])[:SHOWN_TRIALS]:
        params = ", ".join(f"{k}={_value(v)}" for k, v in trial["params"].items())
        minutes = f"{trial['seconds'] / 60:.1f}" if trial["seconds"] else ""
        lines.append(
            f"| {trial['number']} | {trial['validation_accuracy']:.4f} | {minutes} | "
            f"`{trial['experiment']}` | {params} |"
        )
    lines.append("")
    if overlay:
        lines += [
            "## The winner as a params overlay",
            "",
            f"`{folder}/best.yaml`: `sentiment apply-params {folder}/best.yaml` writes it into "
            "params.yaml (then `dvc repro`); with `--run` it runs as one experiment instead.",
            "",
            "```yaml",
            *(f"{key}: {_value(value)}" for key, value in overlay.items()),
            "```",
            "",
        ]
    return "\n".join(lines)


def write_report(folder: Path, record: dict, overlay: dict | None) -> None:
    """report.md and its two SVGs in the study's folder."""
    write_text(folder / HISTORY_FIGURE, render_svg(history_spec(record)))
    write_text(folder / PARAMS_FIGURE, render_svg(params_spec(record)))
    write_text(folder / "report.md", markdown(record, overlay, record["folder"]))
