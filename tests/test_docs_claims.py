"""Every claim in the README and docs holds where a user stands: each `sentiment`, stage and DVC
command parses with the real argument parser, and each quoted accuracy comes from a committed
record the project's own commands wrote."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import sys

import pytest

from tests.conftest import PROJECT_ROOT

PLACEHOLDER_VALUE = "1"
PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
# Committed records: the default run's metrics, the noise, tuning studies, benchmarks, recorded
# runs (sentiment record).
RECORD_GLOBS = (
    "metrics/*.json",
    "metrics/train/metrics.json",
    "metrics/tuning/*/trials.json",
    "metrics/benchmark/*.json",
    "metrics/records/*.json",
)
# Published results the docs compare with, each quoted with its citation on the same line.
PUBLISHED = {"91.2", "91.9", "41.0", "45.7", "49.1", "79.8", "86.5", "91.3", "92.6"}
CITATION = re.compile(r"(?:et al\.|&|and)\s*[A-Z]?[a-z]*,? \(?\d{4}|\(\w[\w &.]+ \d{4}\)|\d{4}\)")


def _commands(text: str) -> list[str]:
    """Shell commands in fenced blocks and inline code, continuation lines joined."""
    found = []
    for block in re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, re.S):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        found += [line.strip().removeprefix("$ ") for line in joined.splitlines()]
    # inline code: the project's own commands (a DVC name in prose, `dvc plots`, is no command)
    found += re.findall(r"`((?:sentiment|python -m stages\.\w+) [^`]+)`", text)
    return [command.split(" #")[0].strip() for command in found if command.strip()]


def _argv(command: str) -> list[str] | None:
    if "..." in command or "<" in command or "|" in command or "$(" in command:
        return None  # a placeholder or a pipeline: not one command to parse
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]  # VAR=value prefixes
    # NAME, FILE, N, SHA...: placeholders a reader fills in; 1 parses as a number and as text
    return [PLACEHOLDER_VALUE if re.fullmatch(r"[A-Z][A-Z_]*", w) else w for w in words]


def _documented(prefix: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    found = []
    for page in PAGES:
        for command in _commands(page.read_text()):
            argv = _argv(command)
            if argv and tuple(argv[: len(prefix)]) == prefix:
                found.append((f"{page.name}: {command}", argv[len(prefix) :]))
    return found


@pytest.mark.parametrize(("where", "argv"), _documented(("sentiment",)), ids=lambda x: str(x)[:80])
def test_each_documented_sentiment_command_parses(where, argv):
    from sentiment.cli import parser

    try:
        parser().parse_args(argv)
    except SystemExit as exit_:
        assert exit_.code == 0, f"{where}: the argument parser refuses it"


class _Parsed(Exception):
    pass


def _stage_commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for page in PAGES:
        for command in _commands(page.read_text()):
            argv = _argv(command)
            if argv and argv[:2] == ["python", "-m"] and argv[2].startswith("stages."):
                found.append((f"{page.name}: {command}", argv[2], argv[3:]))
    return found


@pytest.mark.parametrize(("where", "module", "argv"), _stage_commands(), ids=lambda x: str(x)[:80])
def test_each_documented_stage_command_parses(where, module, argv, monkeypatch):
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [module, *argv])
    stage = importlib.import_module(module)
    with pytest.raises(_Parsed):
        try:
            stage.main()
        except SystemExit as exit_:
            pytest.fail(f"{where}: the stage's argument parser refuses it ({exit_.code})")


@pytest.mark.parametrize(("where", "argv"), _documented(("dvc",)), ids=lambda x: str(x)[:80])
def test_each_documented_dvc_command_parses(where, argv):
    from dvc.cli import parse_args

    try:
        parse_args(argv)
    except SystemExit as exit_:
        assert exit_.code == 0, f"{where}: DVC's argument parser refuses it"
    except Exception as error:  # DvcParserError
        pytest.fail(f"{where}: DVC's argument parser refuses it ({error})")


def _numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    return []


def recorded_values() -> list[float]:
    values = []
    for pattern in RECORD_GLOBS:
        for path in PROJECT_ROOT.glob(pattern):
            values += _numbers(json.loads(path.read_text()))
    return values


def _has_record(quoted: str, values: list[float], percent: bool) -> bool:
    decimals = len(quoted.split(".")[1]) if "." in quoted else 0
    target = float(quoted)
    for value in values:
        for scaled in (value * 100, value) if percent else (value,):
            if abs(round(scaled, decimals) - target) < 10 ** -(decimals + 3):
                return True
    return False


# A model's accuracy or ROC AUC as the docs quote it: 30% to 99.4%, or 0.3000 to 0.9999 on a line
# about accuracy (differences, tolerances and shares are smaller; quantiles sit at 99.5% and up).
ACCURACY_RANGE = (30.0, 99.4)


def quoted_accuracies(text: str) -> list[tuple[str, bool, str]]:
    """(figure, is a percentage, its line) for each accuracy-like figure on a page."""
    low, high = ACCURACY_RANGE
    found = []
    for line in text.splitlines():
        for figure in re.findall(r"(?<![\d.])(\d{2}\.\d{1,2})\s?%", line):
            if low <= float(figure) <= high:
                found.append((figure, True, line))
        if re.search(r"accuracy|AUC|F1", line, re.I):
            for figure in re.findall(r"(?<![\d.])(0\.\d{4,6})(?!\d)", line):
                if low / 100 <= float(figure) <= high / 100:
                    found.append((figure, False, line))
    return found


def test_every_quoted_accuracy_comes_from_a_committed_record():
    values = recorded_values()
    unbacked = []
    for page in PAGES:
        for figure, percent, line in quoted_accuracies(page.read_text()):
            if percent and figure in PUBLISHED and CITATION.search(line):
                continue
            if not _has_record(figure, values, percent):
                unbacked.append(
                    f"{page.name}: {figure}{'%' if percent else ''} in {line.strip()!r}"
                )
    assert not unbacked, "figures no committed record holds:\n" + "\n".join(unbacked)


def test_the_claims_check_catches_an_unbacked_figure():
    values = recorded_values()
    ((figure, percent, _),) = quoted_accuracies("a tuned configuration scores 99.37% on test")
    assert not _has_record(figure, values, percent)
    committed = json.loads((PROJECT_ROOT / "metrics/test.json").read_text())["accuracy"]
    ((figure, percent, _),) = quoted_accuracies(f"test accuracy {committed * 100:.2f}%")
    assert _has_record(figure, values, percent)


def test_the_command_check_catches_a_wrong_flag():
    from sentiment.cli import parser

    with pytest.raises(SystemExit):
        parser().parse_args(["tune", "--trails", "3"])
    assert _argv("IMDB_MIRROR=/x dvc repro") == ["dvc", "repro"]
    assert _commands("```bash\nsentiment tune \\\n  --trials 3\n```") == [
        "sentiment tune --trials 3"
    ]


@pytest.mark.slow
def test_a_recorded_run_holds_its_command_params_metrics_and_platform(tmp_path):
    from tests.conftest import make_project

    repo, run = make_project(tmp_path / "project", epochs=1)
    run(sys.executable, "-m", "sentiment", "record", "smoke", "--", "dvc", "repro")
    record = json.loads((repo / "metrics/records/smoke.json").read_text())
    assert record["command"] == "dvc repro" and record["params"]["epochs"] == 1
    test = json.loads((repo / "metrics/test.json").read_text())
    assert record["metrics"]["metrics/test.json"]["accuracy"] == test["accuracy"]
    assert record["platform"]["cpu"]["logical_cores"] >= 1 and record["date"]
    ran = {stage["stage"]: stage for stage in record["stage_times"]}
    assert {"download", "preprocess", "train", "evaluate", "export"} <= set(ran)
    assert all(stage["wall_s"] > 0 and stage["peak_rss_mb"] > 0 for stage in ran.values())


def test_the_readmes_speed_figures_are_the_committed_benchmarks():
    """What a run costs, as the README says it, is what metrics/benchmark/pipeline*.json hold (one
    file per machine): for each machine, named by its file, CPU and first-level data cache, its
    native run's throughput and wall-time ratios against the tutorial's script and the wall
    times."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## What a run costs", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    files = sorted((PROJECT_ROOT / "metrics/benchmark").glob("pipeline*.json"))
    assert [path.name for path in files] == [
        "pipeline-epyc-avx2.json",
        "pipeline-epyc-l1d-32k.json",
        "pipeline-xeon-l1d-48k.json",
        "pipeline.json",
    ]
    for path in files:
        benchmark = json.loads(path.read_text())
        # "Intel(R) Xeon(R) Processor" is named Intel Xeon
        cpu = re.sub(r"\(R\)| Processor", "", benchmark["cpu"]["model"]).strip()
        # the machine's rows: from the one naming its file to the next machine's
        first = next(i for i, row in enumerate(rows) if f"(metrics/benchmark/{path.name})" in row)
        assert f"[{cpu}, {benchmark['cpu']['caches']['L1d']} L1d" in rows[first]
        # the README gives each machine's native run; docs/measurements.md every run
        for run, row in zip(benchmark["runs"][:1], rows[first : first + 1], strict=True):
            assert row.split("|")[2].strip() == run["isa"], row
            for ratio in ("train_throughput", "wall_time"):
                assert f"{run['ratios'][ratio]:.2f}x" in row, (path.name, run["isa"], ratio)
            assert f"{run['pipeline']['wall_s']:.0f} s" in row, (path.name, run["isa"])
            assert f"the script {run['reference']['wall_s']:.0f} s" in row, (path.name, run["isa"])
            assert f"{run['pipeline']['train_reviews_per_s']:,.0f} reviews/s" in row
