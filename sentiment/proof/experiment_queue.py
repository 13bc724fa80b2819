"""Experiments through DVC's own queue: queue them by name, run them on N workers, read them back.

Each experiment is `dvc exp run --queue -S key=value ... -n NAME`, so it shows in `dvc exp show`
with its params and metrics and its outputs sit in the DVC cache. `wait` polls `dvc queue status`
until the named experiments have finished, timing each one and sampling the memory of the stage
processes the workers run. It also keeps the queue alive, so a wait always ends:

- workers that exited while experiments were still queued are started again;
- an experiment the queue marks running while no worker and no process of the queue is alive
  is orphaned. A worker can stop just as it takes a task (DVC's idle workers shut themselves
  down), leaving the task taken and its run never started: that experiment is queued again under
  its name, with the overrides it was queued with (`overrides`). One whose run had started (its
  worker died under it) is reported failed.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sentiment.errors import PipelineError
from sentiment.proof.records import METRICS_FILES, flatten
from sentiment.tools import DVC, dvc

POLL_S = 2.0
FINISHED = ("Success", "Failed")
# Where DVC's queue workers run each experiment (a temporary copy of the repository).
EXPERIMENT_FOLDERS = ".dvc/tmp/exps"
# Where the queue's processes leave their pid files: workers in celery/, each experiment's run
# (`dvc exp exec-run`, started once its worker has set the experiment up) in run/<task>/.
PID_FILES = ("celery/*.pid", "run/*/*.pid")
RUN_PID = "run/{task}*/*.pid"
# Polls an experiment may stay "Running" with no worker and no process before it is orphaned, and
# how many times one orphaned before its run started is queued again.
ORPHAN_POLLS = 8
REQUEUES = 2
# Polls with experiments queued and no worker alive before the workers are started again, and
# how many such restarts in a row (none of them taking an experiment) before the wait gives up.
STOPPED_POLLS = 5
RESTARTS = 3
WORKERS = re.compile(r"Worker status: (\d+) active, (\d+) idle")
ORPHANED = "Failed (its worker stopped while the queue marked it running)"


def setting(key: str, value: object) -> str:
    """`key=value` for `dvc exp run -S`, the value as YAML reads it back."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        # quoted where YAML would read another type, or DVC would sweep a comma list
        plain = value and value.strip() == value and not any(c in value for c in ",:#[]{}'\"")
        text = value if plain and not _other_type(value) else json.dumps(value)
    else:
        text = repr(value)
    return f"{key}={text}"


def _other_type(text: str) -> bool:
    import yaml

    return not isinstance(yaml.safe_load(text), str)


@dataclass
class Finished:
    """How each experiment ended: its status, seconds from running to finished, peak memory."""

    status: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: float = 0.0


class ExperimentQueue:
    """DVC's experiment queue of the repository at `root`."""

    def __init__(self, root: Path, env: Mapping[str, str] | None = None):
        self.root, self.env = root, dict(env) if env is not None else None
        self.jobs = 1
        # Each experiment's overrides by name: those this queue queued, and those a caller waiting
        # on an earlier run's experiments adds, so an orphan among them can be queued again.
        self.overrides: dict[str, dict[str, object]] = {}

    def dvc(self, *args: str, shown_lines: int = 20) -> str:
        return dvc(*args, cwd=self.root, env=self.env, shown_lines=shown_lines)

    def queue(self, name: str, overrides: Mapping[str, object]) -> None:
        """Queue one experiment with these params changed."""
        settings = [arg for key, value in overrides.items() for arg in ("-S", setting(key, value))]
        self.dvc("exp", "run", "--queue", *settings, "-n", name)
        self.overrides[name] = dict(overrides)

    def start(self, jobs: int) -> None:
        """Start `jobs` workers (those already running are kept)."""
        self.jobs = jobs
        # The worker it starts inherits its output: captured, the call would wait for the queue.
        subprocess.run(
            [*DVC, "queue", "start", "-j", str(jobs)],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )

    def statuses(self) -> dict[str, str]:
        """{experiment name: Queued | Running | Success | Failed} of the queue's tasks."""
        return self._status()[0]

    def _status(self) -> tuple[dict[str, str], int, dict[str, str]]:
        """The queue's tasks by name, how many workers answer (active or idle), and each named
        task's id (the first 7 digits of its stash revision)."""
        found, workers, tasks = {}, 0, {}
        for line in self.dvc("queue", "status").splitlines()[1:]:
            words = line.split()
            counted = WORKERS.search(line)
            if counted:
                workers = int(counted[1]) + int(counted[2])
            elif len(words) >= 4 and words[-1] in ("Queued", "Running", *FINISHED):
                found[words[1]], tasks[words[1]] = words[-1], words[0]
        return found, workers, tasks

    def wait(
        self, names: Iterable[str], on_finished: Callable[[str, str], None] | None = None
    ) -> Finished:
        """Poll until every named experiment has finished; `on_finished(name, status)` as each
        does. A name the queue does not know counts as failed."""
        waiting, finished = set(names), Finished()
        started: dict[str, float] = {}
        requeued: dict[str, int] = {}
        orphan_polls, stopped_polls, restarts = 0, 0, 0
        while waiting:
            statuses, workers, tasks = self._status()
            memory_mb = self._stage_memory_mb()
            now = time.monotonic()
            waited = {statuses.get(name, "Failed") for name in waiting}
            alive = workers > 0 or memory_mb > 0 or self._processes_alive()
            stopped = not alive and "Queued" in waited and "Running" not in waited
            stopped_polls = stopped_polls + 1 if stopped else 0
            if stopped_polls >= STOPPED_POLLS:
                stopped_polls, restarts = 0, restarts + 1
                if restarts > RESTARTS:
                    raise PipelineError(
                        f"DVC's queue workers exit without taking the queued experiments "
                        f"(`dvc queue status`, `dvc queue logs NAME` in {self.root}); "
                        "fix that, or `dvc queue remove --queued`, then run again"
                    )
                self.start(self.jobs)
            elif "Running" in waited:
                restarts = 0
            orphan_polls = orphan_polls + 1 if not alive and "Running" in waited else 0
            orphaned, requeued_now = orphan_polls >= ORPHAN_POLLS, False
            for name in sorted(waiting):
                status = statuses.get(name, "Failed")
                if status == "Running" and orphaned:
                    started_run = self._run_started(tasks[name])
                    gone = self._forget(tasks[name])
                    again = gone and not started_run and requeued.get(name, 0) < REQUEUES
                    if again and name in self.overrides:
                        requeued[name] = requeued.get(name, 0) + 1
                        self.queue(name, self.overrides[name])
                        status, requeued_now = "Queued", True
                        started.pop(name, None)
                    else:
                        status = ORPHANED
                if status == "Running":
                    started.setdefault(name, now)
                elif status in (*FINISHED, ORPHANED):
                    waiting.discard(name)
                    finished.status[name] = status
                    finished.seconds[name] = round(now - started.get(name, now), 1)
                    if on_finished is not None:
                        on_finished(name, status)
            if requeued_now:
                orphan_polls = 0
                self.start(self.jobs)
            finished.peak_memory_mb = max(finished.peak_memory_mb, memory_mb)
            if waiting:
                time.sleep(POLL_S)
        return finished

    def _processes_alive(self) -> bool:
        """Whether a process the queue started (a worker, or a run of an experiment) is alive, by
        the pid files DVC keeps; a pid taken over by a later process does not count."""
        import psutil

        folder = self.root / EXPERIMENT_FOLDERS
        for pid_file in (path for pattern in PID_FILES for path in folder.glob(pattern)):
            try:
                written = pid_file.stat().st_mtime
                process = psutil.Process(int(pid_file.read_text().strip()))
                if (
                    process.status() != psutil.STATUS_ZOMBIE
                    and process.create_time() <= written + 1
                ):
                    return True
            except (OSError, ValueError, psutil.Error):  # gone, unreadable, or not ours to read
                continue
        return False

    def _run_started(self, task: str) -> bool:
        """Whether the run of this task id's experiment had started (its pid file exists)."""
        return any((self.root / EXPERIMENT_FOLDERS).glob(RUN_PID.format(task=task)))

    def _forget(self, task: str) -> bool:
        """Take an orphaned experiment off the queue by its task id (a name can stand for more
        than one task), so its name can be queued again; whether `dvc queue status` lists it no
        more. Killing marks it failed; a task whose setup never ran takes two removals (its stash
        entry, then the broker's message and its result), one that ran takes one."""
        with contextlib.suppress(PipelineError):  # a task DVC no longer knows
            self.dvc("queue", "kill", task)
        for _ in range(3):
            with contextlib.suppress(PipelineError):
                self.dvc("queue", "remove", task)
            if task not in self._status()[2].values():
                return True
        return False

    def _stage_memory_mb(self) -> float:
        """The largest resident memory of a process running in an experiment's folder, in MB."""
        import psutil

        folder = str((self.root / EXPERIMENT_FOLDERS).resolve())
        largest = 0
        for process in psutil.process_iter(["cwd", "memory_info"]):
            cwd, memory = process.info.get("cwd"), process.info.get("memory_info")
            if cwd and memory and cwd.startswith(folder):
                largest = max(largest, memory.rss)
        return round(largest / 1e6, 1)

    def log_tail(self, name: str, lines: int = 1) -> str:
        """The last lines an experiment's run wrote (why it failed)."""
        try:
            written = self.dvc("queue", "logs", name).strip().splitlines()
        except PipelineError as error:
            return str(error)
        useful = [line for line in written if line.strip()]
        return "\n".join(useful[-lines:]) or "no output"

    def results(self) -> dict[str, dict]:
        """{experiment name: {"params": params.yaml, "metrics": {file: {metric: value}}}} of the
        experiments on the current commit, from `dvc exp show --json`."""
        shown = json.loads(self.dvc("exp", "show", "--json"))
        base = next(row for row in shown if row["rev"] != "workspace")
        found = {}
        for group in base.get("experiments") or []:
            for revision in group["revs"]:
                data, name = revision.get("data") or {}, revision.get("name")
                if not name or not data:
                    continue
                metrics = data.get("metrics") or {}
                found[name] = {
                    "params": ((data.get("params") or {}).get("params.yaml") or {}).get("data", {}),
                    "metrics": {
                        path: flatten(metrics[path]["data"])
                        for path in METRICS_FILES
                        if "data" in metrics.get(path, {})  # not "error": the run wrote the file
                    },
                }
        return found


def metric(result: dict, path: str, name: str) -> float | None:
    """One metric of an experiment's results, None where it has none."""
    value = result.get("metrics", {}).get(path, {}).get(name)
    return float(value) if value is not None else None
