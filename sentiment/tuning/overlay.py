"""Apply a params overlay (a small YAML of changed params.yaml keys, e.g. a study's best.yaml).

Usage:
  sentiment apply-params metrics/tuning/imdb/best.yaml          # params.yaml takes its values
  sentiment apply-params metrics/tuning/imdb/best.yaml --run    # or: one `dvc exp run -S ...`

Without --run, params.yaml is rewritten in place with each key's new value (its comments and
order kept), checked by the params schema first; `dvc repro` then runs it. With --run, params.yaml
is left as it is and the overlay runs as one DVC experiment (`dvc exp run -S key=value ...`).
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from sentiment.console import log
from sentiment.errors import PipelineError
from sentiment.files import write_text
from sentiment.params import params_from_mapping, read_params_mapping, read_yaml
from sentiment.proof.experiment_queue import setting
from sentiment.tools import DVC

HEADER = "# A params overlay: params.yaml keys and their values"


def read_overlay(path: Path) -> dict[str, Any]:
    """The overlay's {key: value}; a missing or malformed file is one line."""
    raw = read_yaml(path, "give a study's best.yaml")
    if not isinstance(raw, dict) or not raw:
        raise PipelineError(f"{path} must map params.yaml keys to values, got {raw!r}")
    return raw


def overlay_text(values: dict[str, Any], comment: str) -> str:
    """An overlay file: a header comment, then one `key: value` line per changed key."""
    lines = [HEADER, *(f"# {line}" for line in comment.splitlines())]
    lines += [
        yaml.safe_dump({key: value}, sort_keys=False).strip() for key, value in values.items()
    ]
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def apply_to_text(params_text: str, values: dict[str, Any]) -> str:
    """params.yaml's text with each key's value replaced on its own line, comments kept."""
    lines = params_text.splitlines(keepends=True)
    for key, value in values.items():
        pattern = re.compile(rf"^{re.escape(key)}:(\s*)(.*?)(\s+#.*)?(\r?\n)?$")
        for index, line in enumerate(lines):
            match = pattern.match(line)
            if match:
                spaces, _, comment, newline = match.groups()
                head = f"{key}:{spaces or ' '}{_scalar(value)}"
                if comment:  # the comment keeps its column where the new value leaves room
                    column = match.end(2) + len(comment) - len(comment.lstrip())
                    head += " " * max(1, column - len(head)) + comment.lstrip()
                lines[index] = head + (newline or "")
                break
        else:
            raise PipelineError(f"params.yaml has no top-level line `{key}: ...` to change")
    return "".join(lines)


def apply_overlay(params_path: Path, values: dict[str, Any]) -> None:
    """Write the overlay's values into params.yaml, after checking the result whole."""
    text = params_path.read_text(encoding="utf-8")
    changed = apply_to_text(text, values)
    params_from_mapping(yaml.safe_load(changed), source=f"{params_path} with the overlay")
    write_text(params_path, changed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """apply-params' command line."""
    parser.add_argument("overlay", type=Path, help="the overlay YAML (a study's best.yaml)")
    parser.add_argument(
        "--run", action="store_true", help="run it as one `dvc exp run -S ...` instead"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))


def run(args: argparse.Namespace) -> None:
    """Check the overlay against params.yaml, then apply it or run it as an experiment."""
    values = read_overlay(args.overlay)
    base = read_params_mapping(args.params)
    params_from_mapping(base | values, source=f"{args.params} with {args.overlay}")
    if args.run:
        command = [
            *DVC,
            "exp",
            "run",
            *(a for k, v in values.items() for a in ("-S", setting(k, v))),
        ]
        log(f"apply-params: dvc exp run {' '.join(command[len(DVC) + 2 :])}")
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            raise PipelineError(f"`dvc exp run` with {args.overlay} failed (its output is above)")
        return
    apply_overlay(args.params, values)
    changes = ", ".join(f"{key}={_scalar(value)}" for key, value in values.items())
    log(f"apply-params: {args.params} now has {changes}; `dvc repro` runs it")
