"""The page `dvc plots show` and `dvc plots diff` write, with Vega inlined: it draws offline.

DVC's default page loads Vega, Vega-Lite and vega-embed from a CDN, so with no network it stays
blank. DVC fills the HTML file named by its `plots.html_template` setting instead: it replaces
`{plot_divs}` with one <div> per plot, each an inline script calling `vegaEmbed`, and
`{scripts}` with the CDN tags (so this page has no `{scripts}`). Here the page carries the
libraries that vl-convert ships, in one inline script that defines `vegaEmbed` before the divs.
The bundle runs inside a function so that its top-level names stay its own (`var spec` in DVC's
divs would otherwise collide with any `const spec` of the bundle); it sets window.vegaEmbed.

Usage (after upgrading vl-convert-python; a test fails while the committed page is stale):
  sentiment write-plots-page
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentiment.console import log
from sentiment.files import write_text
from sentiment.proof.figures import VEGA_LITE_VERSION

# Committed; .dvc/config names it relative to .dvc/ (`plots.html_template = plots/offline.html`).
TEMPLATE = Path(".dvc/plots/offline.html")
# The placeholders DVC replaces (dvc_render.html.HTML); a bundle holding one would be mangled.
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
    <!-- Vega {vega}, Vega-Lite {vega_lite}, vega-embed {vega_embed}, inlined by vl-convert
         {vl_convert} (sentiment write-plots-page): no network needed -->
    <script>
(function () {
BUNDLE
// SVG, not vega-embed's default canvas: sharp when zoomed, text that can be selected, and
// marks a test can see in the page.
const embed = window.vegaEmbed;
window.vegaEmbed = (element, spec, options) => embed(element, spec, {renderer: "svg", ...options});
})();
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def offline_template() -> str:
    """The page: DVC's default layout, with the libraries inlined in place of `{scripts}`."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    if any(mark in bundle.lower() for mark in ("</script", "<!--", "<script")) or any(
        mark in bundle for mark in PLACEHOLDERS
    ):
        raise ValueError("vl-convert's bundle would break the page: it holds a tag or {...}")
    versions = {
        "{vega}": vl_convert.get_vega_version(),
        "{vega_lite}": VEGA_LITE_VERSION,
        "{vega_embed}": vl_convert.get_vega_embed_version(),
        "{vl_convert}": vl_convert.__version__,
    }
    page = PAGE
    for mark, version in versions.items():
        page = page.replace(mark, version)
    return page.replace("BUNDLE", bundle)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """write-plots-page's command line."""
    parser.add_argument("--output", type=Path, default=TEMPLATE, help="where to write the page")


def run(args: argparse.Namespace) -> None:
    """Write the offline plots page."""
    write_text(args.output, offline_template())
    log(f"write-plots-page: wrote {args.output}")
