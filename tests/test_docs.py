"""The documentation cannot drift from the code: params reference, links, front page size."""

import dataclasses
import re

import yaml

from sentiment.params import Params
from tests.conftest import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
# The README is a front page; the depth lives under docs/.
README_MAX_BYTES = 12_500


def _params_table() -> dict[str, str]:
    """{param: its default as docs/params.md writes it}, from the table's `key | default` rows."""
    documented = {}
    for line in (DOCS / "params.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        keys = re.findall(r"`([a-z_]+)`", cells[0])
        defaults = [value.strip() for value in cells[1].split(",")]
        assert len(keys) == len(defaults), f"docs/params.md row {line!r}: a default per key"
        documented |= dict(zip(keys, defaults, strict=True))
    return documented


def test_the_params_reference_lists_every_param_with_its_real_default():
    documented = _params_table()
    for field in dataclasses.fields(Params):
        assert field.name in documented, f"docs/params.md does not document {field.name}"
        assert yaml.safe_load(documented[field.name]) == field.default, field.name
    assert set(documented) <= {field.name for field in dataclasses.fields(Params)}


def test_the_readme_is_a_front_page_whose_links_all_resolve():
    text = README.read_text()
    assert len(text.encode()) <= README_MAX_BYTES
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name})" in text, f"the README does not link docs/{page.name}"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (PROJECT_ROOT / target).exists(), target


def test_links_between_pages_resolve():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).resolve().exists(), f"{page.name}: {target}"


def test_user_documentation_names_no_path_outside_the_repository():
    for page in [README, *DOCS.glob("*.md")]:
        text = page.read_text()
        if page.name == "reviewing.md":  # its CI section explains this repository's CI machine
            text = text.split("## CI reproduces the committed results")[0]
        assert "../shared" not in text, f"{page.name} names ../shared"
