"""Tune params.yaml with Optuna, every trial a real DVC experiment run through DVC's queue.

Usage:
  sentiment tune [--space search_space.yaml] [--study NAME] [--trials 20] [--minutes 45] \\
      [--jobs 1] [--confirm-top 3] [--confirm-seeds 2] [--sampler-seed 0]

Each trial draws params from the search space (a seeded TPE sampler), runs the whole pipeline as
`dvc exp run --queue -S ...` (so it shows in `dvc exp show` and its outputs are cached), and is
scored on its saved model's validation accuracy only (metrics/train/metrics.json
saved_model.val_accuracy, or eval.accuracy where the saved model is the last epoch's): the test
split is never read to choose. The study lives in metrics/tuning/NAME/study.db (Optuna's SQLite
storage, git-ignored): run the same command again and it resumes where it stopped, re-running no
finished trial; --trials is the study's total. --jobs N runs N trials at a time on N queue
workers. --minutes bounds this run's search (the trials started by then finish).

Then the few best trials and the default (params.yaml as it is) are re-run over --confirm-seeds
more seeds. A configuration wins only when its mean validation accuracy is above the default's
beyond the seed noise (a one-sided Welch t-test at 5%); otherwise the study says that no
configuration beat the default beyond seed noise. The winner is written as a params overlay,
metrics/tuning/NAME/best.yaml (`sentiment apply-params` applies or runs it), and its test
accuracy is read once, beside the default's and the baseline's. The study's folder also holds
trials.json (every trial: params, score, time), report.md and its SVG pictures.
"""

from __future__ import annotations

import argparse
import datetime
import math
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sentiment.console import log
from sentiment.errors import PipelineError
from sentiment.files import write_json, write_text
from sentiment.params import params_from_mapping, read_params_mapping
from sentiment.proof.experiment_queue import ExperimentQueue, metric
from sentiment.proof.platform_record import describe_cpu
from sentiment.proof.records import (
    BASELINE_METRICS,
    SAVED_VALIDATION_ACCURACY,
    TEST_METRICS,
    TRAIN_METRICS,
    lookup,
)
from sentiment.tools import git
from sentiment.tuning import report
from sentiment.tuning.overlay import overlay_text
from sentiment.tuning.space import SearchSpace, load_space

SPACE_FILE = Path("search_space.yaml")
STUDIES = Path("metrics/tuning")
# What a trial is scored on: its saved model's validation accuracy (records.py).
OBJECTIVE = (TRAIN_METRICS, SAVED_VALIDATION_ACCURACY)
SIGNIFICANCE = 0.05  # one-sided Welch t-test: the winner's mean above the default's
FAILURES_IN_A_ROW = 3  # then the study stops: something is wrong beyond one configuration


def objective(result: dict) -> float | None:
    """A finished experiment's objective (its saved model's validation accuracy), None if none."""
    value = lookup(result.get("metrics", {}).get(OBJECTIVE[0], {}), OBJECTIVE[1])
    return float(value) if value is not None else None


class Study:
    """One Optuna study, its trials run as DVC experiments in the repository at `root`."""

    def __init__(self, root: Path, name: str, space: SearchSpace, base: dict, sampler_seed: int):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.root, self.name, self.space, self.base = root, name, space, base
        self.sampler_seed = sampler_seed
        self.folder = root / STUDIES / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.queue = ExperimentQueue(root)
        commit = git("rev-parse", "HEAD", cwd=root).strip()
        self.study = optuna.create_study(
            study_name=name,
            storage=f"sqlite:///{(self.folder / 'study.db').resolve()}",
            direction="maximize",
            load_if_exists=True,
        )
        attributes = self.study.user_attrs
        if not attributes:
            self.study.set_user_attr("space", space.fingerprint())
            self.study.set_user_attr("commit", commit)
        elif attributes["space"] != space.fingerprint():
            raise PipelineError(
                f"study {name!r} was made with another search space: give a new --study, or "
                f"delete {self.folder / 'study.db'} to start it again"
            )
        elif attributes["commit"] != commit:
            raise PipelineError(
                f"study {name!r} ran at commit {attributes['commit'][:7]} and this is "
                f"{commit[:7]}: its trials are that code's; give a new --study for this one"
            )
        self.peak_memory_mb = float(attributes.get("peak_memory_mb", 0.0))

    # -- the search ----------------------------------------------------------------------------

    def experiment(self, number: int) -> str:
        return f"tune-{self.name}-{number:03d}"

    def _finished_trials(self) -> list:
        from optuna.trial import TrialState

        return [t for t in self.study.trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)]

    def _ask(self):
        """A new trial, drawn by a sampler seeded with the study's seed and its trial count (a
        resumed study draws what an uninterrupted one would have)."""
        import optuna

        self.study.sampler = optuna.samplers.TPESampler(
            seed=self.sampler_seed + len(self.study.trials), constant_liar=True
        )
        trial = self.study.ask()
        values = {d.key: d.suggest(trial) for d in self.space.dimensions}
        return trial, values

    def _recover(self) -> list:
        """Trials an interrupted run left running: those whose experiment finished are scored,
        those still in the queue are waited for, the others fail and their params are re-tried."""
        from optuna.trial import TrialState

        running = [t for t in self.study.trials if t.state == TrialState.RUNNING]
        if not running:
            return []
        statuses, waiting = self.queue.statuses(), []
        for trial in running:
            name = trial.user_attrs.get("experiment", "")
            if statuses.get(name) in ("Queued", "Running", "Success"):
                if "overrides" in trial.user_attrs:  # queued by a past run: re-queued if orphaned
                    self.queue.overrides[name] = trial.user_attrs["overrides"]
                waiting.append(trial)
            else:
                self.study.tell(trial.number, state=TrialState.FAIL)
                self.study.enqueue_trial(trial.params, skip_if_exists=False)
        return waiting

    def _queue_trial(self) -> Any:
        from optuna.trial import TrialState

        trial, values = self._ask()
        overrides = self.space.fixed | values
        try:
            params_from_mapping(self.base | overrides, source="the trial's params")
        except PipelineError as error:  # a combination the pipeline refuses: not worth a run
            trial.set_user_attr("failure", str(error))
            self.study.tell(trial, state=TrialState.FAIL)
            return None
        trial.set_user_attr("overrides", overrides)
        same = next((t for t in self.completed() if t.user_attrs["overrides"] == overrides), None)
        if same is not None:  # drawn before: the same commit and params give the same run
            trial.set_user_attr("experiment", same.user_attrs["experiment"])
            trial.set_user_attr("same_as", same.number)
            self.study.tell(trial, same.value)
            return None
        trial.set_user_attr("experiment", self.experiment(trial.number))
        self.queue.queue(self.experiment(trial.number), overrides)
        return trial

    def search(self, trials: int, minutes: float | None, jobs: int) -> None:
        """Run trials until the study holds `trials` finished ones or `minutes` have passed."""
        from optuna.trial import TrialState

        started = time.monotonic()
        deadline = started + minutes * 60 if minutes else math.inf
        pending = self._recover()
        done = len(self._finished_trials())
        failures = 0
        with tqdm(
            total=trials, initial=min(done, trials), desc="tune: trials", unit="trial"
        ) as bar:
            self._show_best(bar)
            while pending or (done < trials and time.monotonic() < deadline):
                while len(pending) < jobs and done + len(pending) < trials:
                    trial = self._queue_trial()
                    if trial is None:
                        done += 1
                        bar.update()
                        continue
                    pending.append(trial)
                if not pending:
                    break
                self.queue.start(jobs)
                by_name = {t.user_attrs["experiment"]: t for t in pending}
                finished = self.queue.wait(by_name)
                self._note_memory(finished.peak_memory_mb)
                results = self.queue.results()
                for name, trial in by_name.items():
                    value = objective(results.get(name, {}))
                    _note(trial, "seconds", finished.seconds.get(name))
                    if finished.status.get(name) == "Success" and value is not None:
                        self.study.tell(trial.number, value)
                        failures = 0
                    else:
                        why = self.queue.log_tail(name)
                        _note(trial, "failure", why)
                        self.study.tell(trial.number, state=TrialState.FAIL)
                        failures += 1
                        log(f"tune: trial {trial.number} failed: {why} (`dvc queue logs {name}`)")
                    done += 1
                    bar.update()
                self._show_best(bar)
                pending = []
                if failures >= FAILURES_IN_A_ROW:
                    raise PipelineError(
                        f"{failures} trials in a row failed, the last: {why} "
                        f"(`dvc queue logs {name}`); fix that before tuning on"
                    )
                if time.monotonic() >= deadline and done < trials:
                    log(f"tune: {minutes:g} minutes are up after {done} trials; run again to go on")
                    break

    def _show_best(self, bar: tqdm) -> None:
        scored = self.completed()
        if scored:
            bar.set_postfix(best=f"{max(t.value for t in scored):.4f}")

    def _note_memory(self, peak_mb: float) -> None:
        if peak_mb > self.peak_memory_mb:
            self.peak_memory_mb = peak_mb
            self.study.set_user_attr("peak_memory_mb", peak_mb)

    def completed(self) -> list:
        from optuna.trial import TrialState

        return [t for t in self.study.trials if t.state == TrialState.COMPLETE]

    # -- the confirmation ----------------------------------------------------------------------

    def confirm(self, top: int, extra_seeds: int, jobs: int) -> dict:
        """Re-run the `top` best trials and the default over more seeds; name a winner only beyond
        the seed noise."""
        from scipy import stats

        first_seed = int(self.base.get("seed", 42))
        seeds = [first_seed + offset for offset in range(extra_seeds + 1)]
        best = sorted(self.completed(), key=lambda t: (-t.value, t.number))[:top]
        runs: dict[str, dict] = {}  # experiment name -> overrides
        for seed in seeds:
            runs[f"tune-{self.name}-default-seed{seed}"] = {"seed": seed}
        for trial in best:
            for seed in seeds[1:]:
                name = f"{self.experiment(trial.number)}-seed{seed}"
                runs[name] = trial.user_attrs["overrides"] | {"seed": seed}
        results = self.queue.results()
        missing = {name: o for name, o in runs.items() if objective(results.get(name, {})) is None}
        if missing:
            log(f"tune: confirming on seeds {', '.join(map(str, seeds))}: {len(missing)} runs")
            statuses = self.queue.statuses()
            for name, overrides in missing.items():
                if statuses.get(name) in ("Queued", "Running"):
                    self.queue.overrides[name] = overrides  # queued by a past run
                else:
                    self.queue.queue(name, overrides)
            self.queue.start(jobs)
            with tqdm(total=len(missing), desc="tune: confirmation", unit="run") as bar:
                finished = self.queue.wait(missing, on_finished=lambda *_: bar.update())
            self._note_memory(finished.peak_memory_mb)
            results = self.queue.results()
        default_values = self._values(results, [f"tune-{self.name}-default-seed{s}" for s in seeds])
        candidates = []
        for trial in best:
            names = [f"{self.experiment(trial.number)}-seed{s}" for s in seeds[1:]]
            values = [trial.value, *self._values(results, names)]
            difference = statistics.fmean(values) - statistics.fmean(default_values)
            p_value = float(
                stats.ttest_ind(
                    values, default_values, equal_var=False, alternative="greater"
                ).pvalue
            )
            if math.isnan(p_value):  # no spread at all on either side
                p_value = 0.0 if difference > 0 else 1.0
            candidates.append(
                {
                    "trial": trial.number,
                    "experiment": self.experiment(trial.number),
                    "params": trial.user_attrs["overrides"],
                    "validation_accuracy": _spread(values),
                    "difference": round(difference, 6),
                    "p_value": round(p_value, 6),
                    "beats_default": difference > 0 and p_value < SIGNIFICANCE,
                }
            )
        default_run = results.get(f"tune-{self.name}-default-seed{first_seed}", {})
        winners = [c for c in candidates if c["beats_default"]]
        winner = max(winners, key=lambda c: c["validation_accuracy"]["mean"]) if winners else None
        # The test split is read here, once, after the choice is made.
        chosen = winner or (candidates[0] if candidates else None)
        chosen_run = results.get(chosen["experiment"], {}) if chosen else {}
        return {
            "seeds": seeds,
            "significance": SIGNIFICANCE,
            "default": {"validation_accuracy": _spread(default_values)},
            "candidates": candidates,
            "winner": winner["trial"] if winner else None,
            "test": {
                "default": _test_scores(default_run, TEST_METRICS),
                "chosen": {"trial": chosen["trial"], **_test_scores(chosen_run, TEST_METRICS)}
                if chosen
                else None,
                "baseline": _test_scores(default_run, BASELINE_METRICS),
            },
        }

    def _values(self, results: dict, names: list[str]) -> list[float]:
        values = []
        for name in names:
            value = objective(results.get(name, {}))
            if value is None:
                raise PipelineError(
                    f"the confirmation run {name} has no validation accuracy: "
                    f"{self.queue.log_tail(name)} (`dvc queue logs {name}`)"
                )
            values.append(value)
        return values

    # -- the record ----------------------------------------------------------------------------

    def record(self, confirmation: dict | None, command: str) -> dict:
        from optuna.trial import TrialState

        trials = [
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "params": t.params,
                "validation_accuracy": t.value if t.state == TrialState.COMPLETE else None,
                "experiment": t.user_attrs.get("experiment"),
                "seconds": t.user_attrs.get("seconds"),
                **({"same_as": t.user_attrs["same_as"]} if "same_as" in t.user_attrs else {}),
                **({"failure": t.user_attrs["failure"]} if "failure" in t.user_attrs else {}),
            }
            for t in self.study.trials
            if t.state != TrialState.RUNNING
        ]
        seconds = [t["seconds"] for t in trials if t["seconds"]]
        return {
            "what": "A tuning study: each trial a DVC experiment scored on validation accuracy, "
            "the best few confirmed over more seeds against the default (sentiment tune).",
            "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": self.study.user_attrs["commit"],
            "cpu": describe_cpu().get("model", "unknown"),
            "objective": f"{OBJECTIVE[0]} {OBJECTIVE[1]} (validation accuracy of the saved "
            "model; eval.accuracy where it is the last epoch's)",
            "space": {
                "fixed": self.space.fixed,
                "search": {d.key: d.describe() for d in self.space.dimensions},
            },
            "folder": str(STUDIES / self.name),
            "trials": trials,
            "trial_minutes": {
                "total": round(sum(seconds) / 60, 1),
                "median": round(statistics.median(seconds) / 60, 2) if seconds else None,
            },
            "peak_memory_mb": self.peak_memory_mb,
            "confirmation": confirmation,
        }

    def overlay(self, confirmation: dict | None) -> dict | None:
        """The winner's params that differ from params.yaml, or None without a winner."""
        if not confirmation or confirmation["winner"] is None:
            return None
        winner = next(c for c in confirmation["candidates"] if c["trial"] == confirmation["winner"])
        return {k: v for k, v in winner["params"].items() if self.base.get(k) != v}


def _note(trial, key: str, value: object) -> None:
    """A user attribute of a trial this run asked (a trial left by an earlier run keeps its own)."""
    import optuna

    if isinstance(trial, optuna.trial.Trial):
        trial.set_user_attr(key, value)


def _spread(values: list[float]) -> dict:
    return {
        "mean": round(statistics.fmean(values), 6),
        "std": round(statistics.stdev(values), 6) if len(values) > 1 else 0.0,
        "values": [round(v, 6) for v in values],
    }


def _test_scores(result: dict, path: str) -> dict:
    return {name: metric(result, path, name) for name in ("accuracy", "roc_auc")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """tune's command line."""
    parser.add_argument("--space", type=Path, default=SPACE_FILE, help="the search space YAML")
    parser.add_argument("--study", default="study", help="the study's name (its folder's)")
    parser.add_argument("--trials", type=int, default=20, help="finished trials the study holds")
    parser.add_argument("--minutes", type=float, help="wall-time budget of this run's search")
    parser.add_argument("--jobs", type=int, default=1, help="trials at once (queue workers)")
    parser.add_argument("--confirm-top", type=int, default=3, help="best trials re-run on seeds")
    parser.add_argument(
        "--confirm-seeds", type=int, default=2, help="extra seeds per confirmed run; 0: no winner"
    )
    parser.add_argument("--sampler-seed", type=int, default=0, help="the TPE sampler's seed")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))


def _check_arguments(args: argparse.Namespace) -> None:
    for name in ("trials", "jobs", "confirm_top"):
        if getattr(args, name) < 1:
            raise PipelineError(f"--{name.replace('_', '-')} must be 1 or more")
    if args.confirm_seeds < 0:
        raise PipelineError("--confirm-seeds must be 0 or more")
    if args.minutes is not None and args.minutes <= 0:
        raise PipelineError("--minutes must be above 0")
    if not args.study.replace("-", "").replace("_", "").isalnum():
        raise PipelineError(f"--study {args.study!r}: use letters, digits, - and _ only")
    if not Path("dvc.yaml").exists():
        raise PipelineError("no dvc.yaml here: run sentiment tune from the project's root")


def run(args: argparse.Namespace) -> None:
    """Search, confirm, and write the study's record, report, pictures and overlay."""
    _check_arguments(args)
    base = read_params_mapping(args.params)
    space = load_space(args.space, base)
    study = Study(Path.cwd(), args.study, space, base, args.sampler_seed)
    study.search(args.trials, args.minutes, args.jobs)
    if not study.completed():
        raise PipelineError("no trial finished: see `dvc queue status` and `dvc queue logs`")
    confirmation = (
        study.confirm(args.confirm_top, args.confirm_seeds, args.jobs)
        if args.confirm_seeds
        else None
    )
    command = shlex.join(["sentiment", "tune", *sys.argv[2:]]) if len(sys.argv) > 1 else "tune"
    record = study.record(confirmation, command)
    write_json(study.folder / "trials.json", record)
    overlay_path = study.folder / "best.yaml"
    overlay = study.overlay(confirmation)
    if overlay is not None:
        comment = (
            f"study {args.study}: trial {confirmation['winner']}, confirmed over seeds "
            f"{', '.join(map(str, confirmation['seeds']))} (see report.md)\n"
            f"apply: sentiment apply-params {overlay_path.relative_to(Path.cwd())}"
        )
        write_text(overlay_path, overlay_text(overlay, comment))
    elif overlay_path.exists():
        overlay_path.unlink()  # an earlier winner this study no longer confirms
    report.write_report(study.folder, record, overlay)
    log(report.verdict(record))
    log(f"tune: wrote {study.folder}/report.md")
