"""The package as pip installs it from a wheel: every subpackage in it, the command working."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The project's wheel, built from a copy of its sources (no build files left in the tree)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    shutil.copytree(
        PROJECT_ROOT / "sentiment",
        source / "sentiment",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    built = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "--quiet", "-w", str(built), str(source)], check=True, capture_output=True
    )
    (path,) = built.glob("*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_holds_every_module_of_the_package_and_the_console_script(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = {
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in (PROJECT_ROOT / "sentiment").rglob("*.py")
    }
    assert modules <= set(names), sorted(modules - set(names))
    (entry_points,) = [name for name in names if name.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "sentiment = sentiment.cli:main" in text


@pytest.mark.slow
def test_a_non_editable_install_serves_predictions_outside_the_checkout(wheel, exported, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, wheel],
        check=True,
        capture_output=True,
    )
    env = os.environ | {"PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import sentiment; print(sentiment.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site))  # the installed copy, not the checkout
    _, folder = exported
    result = subprocess.run(
        [site / "bin" / "sentiment", "predict", "--model", folder, "A wonderful, moving film."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)
    assert prediction["label"] in ("negative", "positive") and 0 < prediction["probability"] < 1
