"""The `sentiment` command line: one entry point, every subcommand with its --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentiment import cli
from tests.conftest import PROJECT_ROOT

SUBCOMMANDS = [[name] for name in cli.COMMANDS] + [["benchmark", name] for name in cli.BENCHMARKS]


def test_every_subcommand_module_exposes_its_arguments_and_its_run():
    for module_name, summary in [*cli.COMMANDS.values(), *cli.BENCHMARKS.values()]:
        module = __import__(module_name, fromlist=["run"])
        assert callable(module.add_arguments) and callable(module.run), module_name
        assert module.__doc__ and summary, module_name


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=" ".join)
def test_each_subcommand_has_a_help_page(words, capsys):
    with pytest.raises(SystemExit) as exit_status:
        cli.parser().parse_args([*words, "--help"])
    assert exit_status.value.code == 0
    assert f"usage: sentiment {' '.join(words)}" in capsys.readouterr().out


def test_the_help_lists_every_command_and_needs_no_tensorflow():
    code = (
        "import sys; from sentiment import cli; cli.parser().format_help();"
        "print(sorted(m for m in ('tensorflow', 'keras', 'dvc') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"  # `sentiment --help` answers at once
    page = cli.parser().format_help()
    for name in [*cli.COMMANDS, "benchmark"]:
        assert name in page


def test_the_console_script_and_python_m_are_the_same_command():
    script = Path(sys.executable).parent / "sentiment"
    for command in ([str(script)], [sys.executable, "-m", "sentiment"]):
        result = subprocess.run(
            [*command, "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: sentiment [-h] COMMAND ...")


def test_an_unknown_command_is_refused_naming_the_choices():
    result = subprocess.run(
        [sys.executable, "-m", "sentiment", "reveiw"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice: 'reveiw'" in result.stderr and "compare" in result.stderr


def test_a_command_error_is_one_line_and_exit_status_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sentiment", "benchmark", "pipeline", "--repeats", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: --reference None is not a file: give the reference script and the archive\n"
    )
