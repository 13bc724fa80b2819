"""A measured process: its wall time and peak resident memory, the figures both benchmarks print."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measured:
    """What one process tree did: exit status, time, memory and what it wrote."""

    exit_status: int
    wall_s: float
    peak_rss_mb: float  # the largest resident set of the process or any child it waited for
    stdout: str  # empty when its lines went to on_line
    stderr: str


def run_measured(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], object] | None = None,
) -> Measured:
    """Run a command to completion; on_line, if given, takes each stdout line as it comes
    (then stdout is not kept). Peak memory comes from the kernel's accounting (wait4)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        kept = []
        for line in process.stdout:  # type: ignore[union-attr]
            if on_line is None:
                kept.append(line)
            else:
                on_line(line)
        _, status, usage = os.wait4(process.pid, 0)
        wall_s = time.perf_counter() - started
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    return Measured(
        exit_status=os.waitstatus_to_exitcode(status),
        wall_s=wall_s,
        peak_rss_mb=usage.ru_maxrss / 1024,  # ru_maxrss is in KiB on Linux
        stdout="".join(kept),
        stderr=stderr,
    )
