"""`dvc plots show` and `dvc plots diff` pages that draw with no network: checked in a browser."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment.proof.plots_page import TEMPLATE, offline_template
from tests.conftest import PROJECT_ROOT

PLOTS = ("ROC curve", "Loss per epoch", "Confusion matrix")
DVC_YAML = """\
plots:
  - ROC curve:
      x: fpr
      y:
        roc.json: tpr
  - Loss per epoch:
      template: linear
      x: step
      y:
        loss.tsv: loss
  - Confusion matrix:
      template: confusion
      x: actual
      y:
        confusion.csv: predicted
"""
BROWSERS = ("chromium-headless-shell", "chromium", "/usr/lib/chromium/chromium-headless-shell")


def dvc(repo: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=os.environ | {"DVC_NO_ANALYTICS": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"dvc {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def the_projects_setting() -> str:
    """plots.html_template as the project's committed .dvc/config sets it."""
    return dvc(PROJECT_ROOT, "config", "plots.html_template").strip()


pytestmark = pytest.mark.slow  # real DVC commands and a real browser: seconds each


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git + DVC repository with three plots, two commits, and the project's page setting."""
    repo = tmp_path_factory.mktemp("plots")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "confusion.csv").write_text("actual,predicted\nneg,neg\nneg,pos\npos,pos\npos,pos\n")
    for name, curve in (("base", [0.1, 0.8]), ("change", [0.3, 0.9])):
        (repo / "roc.json").write_text(
            f'[{{"fpr": 0, "tpr": 0}}, {{"fpr": {curve[0]}, "tpr": {curve[1]}}},'
            ' {"fpr": 1, "tpr": 1}]'
        )
        (repo / "loss.tsv").write_text(f"step\tloss\n0\t0.7\n1\t{curve[0]}\n")
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", name], cwd=repo, check=True)
    setting = the_projects_setting()
    (repo / ".dvc" / setting).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / TEMPLATE, repo / ".dvc" / setting)
    dvc(repo, "config", "plots.html_template", setting)
    return repo


def page(repo: Path, *command: str) -> Path:
    """Run `dvc plots ...` writing into a fresh folder; the page it wrote."""
    output = repo / f"page-{len(list(repo.glob('page-*')))}"
    dvc(repo, "plots", *command, "-o", str(output))
    return output / "index.html"


def external_references(html: str) -> list[str]:
    """Every script, style sheet, frame or image tag of the page that loads a file.

    The inlined libraries' own code is left out (vega-embed builds an <img> in a string for
    its "save as PNG" window); the <script> tags themselves are kept.
    """
    markup = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1", html, flags=re.DOTALL | re.IGNORECASE)
    tags = re.findall(r"<(?:script|link|iframe|img)\b[^>]*>", markup, flags=re.IGNORECASE)
    return [tag for tag in tags if re.search(r"\b(?:src|href)\s*=", tag, flags=re.IGNORECASE)]


def test_the_committed_page_is_what_the_generator_writes_for_the_pinned_vl_convert():
    assert (PROJECT_ROOT / TEMPLATE).read_text() == offline_template()


def test_dvc_config_points_plots_at_the_committed_page():
    assert PROJECT_ROOT / ".dvc" / the_projects_setting() == PROJECT_ROOT / TEMPLATE


def test_dvc_plots_output_folder_is_ignored_by_git():
    result = subprocess.run(
        ["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=PROJECT_ROOT, check=False
    )
    assert result.returncode == 0


@pytest.mark.parametrize("command", [("show",), ("diff", "HEAD~1")])
def test_the_page_dvc_writes_loads_nothing_from_elsewhere(repo, command):
    html = page(repo, *command).read_text()
    assert external_references(html) == []
    assert "cdn.jsdelivr.net" not in html
    assert html.count("vegaEmbed(") >= len(PLOTS)  # the plots are in it, not an empty page


def browser() -> str | None:
    found = (
        shutil.which(name) or (name if os.access(name, os.X_OK) else None) for name in BROWSERS
    )
    return next((path for path in found if path), None)


def drawn_charts(html_file: Path, profile: Path) -> str:
    """The page's DOM after a headless Chromium with no network ran its scripts."""
    command = [
        browser(),
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # no network: every host unresolvable and every request sent to a closed port
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--virtual-time-budget=10000",
        "--dump-dom",
        html_file.as_uri(),
    ]
    if os.geteuid() == 0 and shutil.which("unshare"):
        command = ["unshare", "--net", *command]  # and no network interface at all
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(
    browser() is None, reason="no Chromium: apt-get install chromium-headless-shell"
)
@pytest.mark.parametrize("command", [("show",), ("diff", "HEAD~1")])
def test_a_browser_with_no_network_draws_every_plot_of_the_page(repo, command, tmp_path):
    dom = drawn_charts(page(repo, *command), tmp_path / "profile")
    charts = re.findall(r'<svg[^>]*class="marks"', dom)  # one per chart vega-embed drew
    assert len(charts) == len(PLOTS)
    assert dom.count('aria-roledescription="line mark"') >= 2  # ROC and loss curves
    assert dom.count('aria-roledescription="rect mark"') >= 4  # confusion cells
    if command[0] == "diff":  # both revisions, told apart in the legends
        assert "HEAD~1" in dom and "workspace" in dom


@pytest.mark.skipif(
    browser() is None, reason="no Chromium: apt-get install chromium-headless-shell"
)
def test_without_the_offline_page_the_same_browser_draws_nothing(repo, tmp_path):
    """The check above can fail: DVC's own page, which loads Vega from a CDN, stays blank."""
    from dvc_render.html import PAGE_HTML

    default_page, output = tmp_path / "default.html", tmp_path / "default"
    default_page.write_text(PAGE_HTML)
    dvc(repo, "plots", "show", "--html-template", str(default_page), "-o", str(output))
    html = (output / "index.html").read_text()
    assert "cdn.jsdelivr.net" in html
    assert external_references(html)  # the check of the offline page can fail too
    assert (
        re.findall(r'<svg[^>]*class="marks"', drawn_charts(output / "index.html", tmp_path)) == []
    )
