"""What every stage and command does around its work: one-line errors, notes on stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from sentiment.errors import CheckFailed, PipelineError


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's or command's main(); a PipelineError becomes `error: ...` and exit status 2,
    a CheckFailed `failed: ...` and exit status 1."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except CheckFailed as failure:
        print(f"failed: {failure}", file=sys.stderr)
        sys.exit(1)


def log(message: str) -> None:
    """Progress notes go to stderr; results go to files DVC tracks."""
    print(message, file=sys.stderr, flush=True)
