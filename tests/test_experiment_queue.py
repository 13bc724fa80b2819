"""DVC's experiment queue as the tuning study and the noise measurement drive it: a real queue,
a real worker killed while it runs an experiment, a task taken by a worker that never began it."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

from sentiment.proof.experiment_queue import ORPHANED, ExperimentQueue
from tests.conftest import project_env

DVC_YAML = """\
stages:
  pause:
    cmd: python -c "import time; time.sleep(${pause}); open('out.txt', 'w').write('done')"
    params: [pause]
    outs: [out.txt]
"""


def _repo(path):
    env = project_env()
    path.mkdir()
    (path / "params.yaml").write_text("pause: 1\n")
    (path / "dvc.yaml").write_text(DVC_YAML)
    (path / ".gitignore").write_text("out.txt\n")
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=path, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "pause"], cwd=path, env=env, check=True)
    return ExperimentQueue(path, env)


def _queue_processes(root) -> list[psutil.Process]:
    """The queue's worker and the experiment it runs, with their children."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        words = " ".join(process.info.get("cmdline") or [])
        in_repo = str(root) in (process.info.get("cwd") or "")
        if in_repo and ("queue-worker" in words or "exec-run" in words or "queue start" in words):
            found += [process, *process.children(recursive=True)]
    return found


def _stage_running(root) -> bool:
    """Whether an experiment's stage command runs (in its folder under .dvc/tmp/exps)."""
    folder = str(root / ".dvc" / "tmp" / "exps")
    return any(
        (process.info.get("cwd") or "").startswith(folder)
        and "time.sleep" in " ".join(process.info.get("cmdline") or [])
        for process in psutil.process_iter(["cmdline", "cwd"])
    )


@pytest.mark.slow
def test_a_wait_ends_when_the_worker_dies_mid_run_and_the_queue_goes_on(tmp_path):
    queue = _repo(tmp_path / "repo")
    queue.queue("long", {"pause": 120})
    queue.queue("short", {"pause": 1})
    queue.start(1)
    deadline = time.monotonic() + 120
    while not _stage_running(tmp_path / "repo"):  # mid-run: begun, its stage's command running
        assert time.monotonic() < deadline, queue.dvc("queue", "status")
        time.sleep(0.5)
    victims = _queue_processes(tmp_path / "repo")
    assert victims, "no worker process found"
    assert queue._processes_alive()  # by DVC's pid files: the worker and the run
    for process in victims:
        process.kill()
    psutil.wait_procs(victims, timeout=10)
    assert not queue._processes_alive()
    assert queue.statuses()["long"] == "Running"  # DVC still marks it running, with no worker

    seen: list[tuple[str, str]] = []
    started = time.monotonic()
    finished = queue.wait(["long", "short"], on_finished=lambda *ended: seen.append(ended))

    assert time.monotonic() - started < 110  # long before its 120-second pause would have ended
    assert finished.status == {"long": ORPHANED, "short": "Success"}
    assert [name for name, _ in seen] == ["long", "short"]
    assert "long" not in queue.statuses()  # off the queue: the name can be queued again
    queue.queue("long", {"pause": 1})
    queue.start(1)
    assert queue.wait(["long"]).status == {"long": "Success"}


@pytest.mark.slow
def test_a_task_its_worker_took_and_never_began_is_queued_again_and_runs(tmp_path):
    queue = _repo(tmp_path / "repo")
    queue.queue("taken", {"pause": 2})
    broker = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "celery" / "broker"
    for message in (broker / "in").iterdir():  # what a worker does as it takes a task
        message.rename(broker / "processed" / message.name)
    assert queue.statuses() == {"taken": "Running"}  # taken, and no worker left to begin it

    seen: list[tuple[str, str]] = []
    finished = queue.wait(["taken"], on_finished=lambda *ended: seen.append(ended))

    assert finished.status == {"taken": "Success"}
    assert seen == [("taken", "Success")]
    assert queue.statuses() == {"taken": "Success"}  # one task under the name, the one that ran
    assert queue.results()["taken"]["params"]["pause"] == 2
