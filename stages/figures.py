"""Stage figures: the plots as static SVG pictures, which the report embeds."""

import argparse
from pathlib import Path

from sentiment.console import log, run_main
from sentiment.files import atomic_output
from sentiment.proof.figures import pipeline_specs, render_svg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plots", type=Path, required=True, help="evaluate's plot data folder")
    parser.add_argument("--curves", type=Path, required=True, help="DVCLive's per-epoch curves")
    parser.add_argument(
        "--labels", type=Path, required=True, help="preprocess's label names, in their order"
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for the SVG files")
    args = parser.parse_args()

    labels = args.labels.read_text(encoding="utf-8").splitlines()
    specs = pipeline_specs(plots=args.plots, curves=args.curves, labels=labels)
    with atomic_output(args.output, directory=True) as staging:
        for name, spec in specs.items():
            (staging / f"{name}.svg").write_text(render_svg(spec), encoding="utf-8")
    log(f"figures: {len(specs)} SVG pictures in {args.output}")


if __name__ == "__main__":
    run_main(main)
