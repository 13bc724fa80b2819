"""Work run side by side in forked processes: each reads what it needs from the parent's memory
(copy-on-write), none of it pickled, and a process that dies ends the work with one line."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sentiment.errors import PipelineError

PROCESSES = 2  # the most processes one piece of work runs in, side by side

# What forked processes read: set before they start, so they share it with the parent.
SHARED: dict[str, Any] = {}


def processes_for(tasks: int) -> int:
    """How many processes run `tasks` tasks side by side: one where fork is not the way to start
    them (it shares their inputs without copying them) or only one CPU is ours, else up to
    PROCESSES."""
    if sys.platform != "linux":
        return 1
    return max(1, min(PROCESSES, len(os.sched_getaffinity(0)), tasks))


def side_by_side(function: Callable, tasks: list, shared: dict[str, Any], work: str) -> list:
    """[function(task) for task in tasks], in up to PROCESSES forked processes that read `shared`
    through SHARED; `work` names the work in the error a dying process ends it with. Not nested:
    a task that ran side_by_side itself would replace its caller's SHARED."""
    if SHARED:
        raise RuntimeError("side_by_side is running already: its tasks cannot run it again")
    SHARED.update(shared)
    try:
        processes = processes_for(len(tasks))
        if processes == 1:
            return [function(task) for task in tasks]
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(processes, mp_context=fork) as pool:
            return list(pool.map(function, tasks))
    except BrokenProcessPool:
        raise PipelineError(
            f"a process {work} died before it finished (killed, or out of memory); "
            "free memory and run again"
        ) from None
    finally:
        SHARED.clear()
