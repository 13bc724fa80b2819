"""What every stage and command does around its work: one-line errors, notes on stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from sentiment.errors import CheckFailed, PipelineError

# Set to a file path, every stage appends a JSON line of where its time went (the pipeline
# benchmark's per-stage table): wall, CPU, peak memory, and the share spent starting up.
STAGE_TIMES_ENV = "SENTIMENT_STAGE_TIMES"


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's or command's main(); a PipelineError becomes `error: ...` and exit status 2,
    a CheckFailed `failed: ...` and exit status 1."""
    # TensorFlow's C++ notes. 3, not 2: on some CPUs oneDNN logs its kernel fallbacks at ERROR
    # level ("oneDNN supports DT_INT32 only on platforms with AVX-512. Falling back ..."), which
    # is no error to whoever reads a stage's output; real failures raise in Python.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    clock = _StageClock() if os.environ.get(STAGE_TIMES_ENV) else None
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except CheckFailed as failure:
        print(f"failed: {failure}", file=sys.stderr)
        sys.exit(1)
    finally:
        if clock is not None:
            clock.record(os.environ[STAGE_TIMES_ENV])


class _StageClock:
    """Times this process: from its start (the interpreter's own start-up included), the part
    spent before main() and inside import statements (start-up), CPU and peak memory."""

    def __init__(self):
        import builtins
        import time

        import psutil

        self.now = time.perf_counter
        self.started_wall = time.time() - psutil.Process().create_time()  # start -> main()
        self.entered = self.now()
        self.importing = 0.0
        self._original = builtins.__import__
        depth = 0

        def timed_import(*args, **kwargs):
            nonlocal depth
            if depth:
                return self._original(*args, **kwargs)
            depth += 1
            began = self.now()
            try:
                return self._original(*args, **kwargs)
            finally:
                self.importing += self.now() - began
                depth -= 1

        builtins.__import__ = timed_import

    def record(self, path: str) -> None:
        import builtins
        import json
        import resource

        builtins.__import__ = self._original
        times = os.times()
        line = {
            "stage": os.path.splitext(os.path.basename(sys.argv[0]))[0],
            "wall_s": round(self.started_wall + self.now() - self.entered, 3),
            "start_up_s": round(self.started_wall + self.importing, 3),
            "cpu_s": round(
                times.user + times.system + times.children_user + times.children_system, 3
            ),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")


def read_stage_times(path: Path) -> list[dict]:
    """The lines the stages appended to STAGE_TIMES_ENV's file, in the order they ran (none if
    no stage wrote it)."""
    import json

    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def log(message: str) -> None:
    """Progress notes go to stderr; results go to files DVC tracks."""
    print(message, file=sys.stderr, flush=True)
