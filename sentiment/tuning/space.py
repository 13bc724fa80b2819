"""The search space of a tuning study: params.yaml keys with their choices or ranges, checked.

    fixed:                      # set in every trial, e.g. short epochs
      epochs: 3
    search:
      units: {choices: [10, 32, 64]}
      learning_rate: {low: 0.0003, high: 0.01, log: true}
      dropout: {low: 0.0, high: 0.5}
      vocab_size: {low: 5000, high: 20000, step: 5000}

Every key is a params.yaml key; every choice, bound and fixed value is checked by the params
schema against the rest of params.yaml before any trial runs, so a typo or an empty range is one
line, not a failed experiment an hour in.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentiment.errors import PipelineError
from sentiment.params import Params, ParamsError, params_from_mapping, read_yaml

SECTIONS = ("fixed", "search")
CHOICE_KEYS = {"choices"}
RANGE_KEYS = {"low", "high", "log", "step"}
# The seed is what confirmation varies: a study compares configurations, not seeds.
NOT_SEARCHED = ("seed",)


@dataclass(frozen=True)
class Dimension:
    """One searched param: its choices, or its range (low, high, log scale, step)."""

    key: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    whole: bool = False  # an int param: whole numbers only

    def suggest(self, trial) -> Any:
        """The value an Optuna trial draws."""
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.whole:
            step = int(self.step or 1)
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        if self.choices is not None:
            return ", ".join(str(choice) for choice in self.choices)
        scale = ", log scale" if self.log else ""
        step = f", step {self.step:g}" if self.step else ""
        return f"{self.low:g} to {self.high:g}{scale}{step}"


@dataclass(frozen=True)
class SearchSpace:
    """What every trial sets (fixed) and what the study searches (dimensions)."""

    fixed: dict[str, Any]
    dimensions: tuple[Dimension, ...]

    def fingerprint(self) -> str:
        """A short hash of the space: a study resumes only with the space it was made with."""
        text = json.dumps(
            {"fixed": self.fixed, "search": [d.__dict__ for d in self.dimensions]}, sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _fail(source: str, where: str, problem: str) -> PipelineError:
    return PipelineError(f"{source}: {where}: {problem}")


def _known_key(source: str, section: str, key: Any) -> str:
    fields = typing.get_type_hints(Params)
    if key not in fields:
        close = difflib.get_close_matches(str(key), fields, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see params.yaml for the keys"
        raise _fail(source, f"{section}.{key}", f"not a params.yaml key ({hint})")
    if key in NOT_SEARCHED:
        raise _fail(source, f"{section}.{key}", "the seed is not tuned: --confirm-seeds varies it")
    return key


def _check_value(source: str, where: str, base: dict, key: str, value: Any) -> None:
    try:
        params_from_mapping(base | {key: value}, source="params.yaml")
    except ParamsError as error:
        raise _fail(source, where, str(error)) from None


def _dimension(source: str, base: dict, key: str, spec: Any) -> Dimension:
    where = f"search.{key}"
    if not isinstance(spec, dict) or not spec:
        raise _fail(source, where, "give {choices: [...]} or {low: ..., high: ...}")
    given = set(spec)
    if (given & CHOICE_KEYS and given & RANGE_KEYS) or not given <= CHOICE_KEYS | RANGE_KEYS:
        raise _fail(
            source,
            where,
            f"unknown or mixed settings {sorted(given)}: give either choices, or low and high "
            "(with log or step)",
        )
    expected = typing.get_type_hints(Params)[key]
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise _fail(source, where, "choices is empty: list one value or more")
        if len({json.dumps(choice) for choice in choices}) != len(choices):
            raise _fail(source, where, f"choices {choices} repeat a value")
        for choice in choices:
            _check_value(source, where, base, key, choice)
        return Dimension(key, choices=tuple(choices))
    if expected not in (int, float):
        raise _fail(source, where, f"{key} is not a number: give choices")
    if "low" not in spec or "high" not in spec:
        raise _fail(source, where, "a range needs both low and high")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for name, bound in (("low", low), ("high", high), ("step", step)):
        if bound is not None and (not isinstance(bound, (int, float)) or isinstance(bound, bool)):
            raise _fail(source, where, f"{name} {bound!r} is not a number")
        if expected is int and bound is not None and not isinstance(bound, int):
            raise _fail(source, where, f"{key} is a whole number: {name} {bound!r} is not")
    if not low < high:
        raise _fail(source, where, f"empty range: low {low} is not below high {high}")
    if not isinstance(log, bool):
        raise _fail(source, where, f"log must be true or false, got {log!r}")
    if log and low <= 0:
        raise _fail(source, where, f"a log scale needs low above 0, got {low}")
    if step is not None and (step <= 0 or log):
        raise _fail(source, where, "step must be above 0, and a log scale takes no step")
    for bound in (low, high):
        _check_value(source, where, base, key, bound)
    return Dimension(
        key,
        low=float(low) if expected is float else low,
        high=float(high) if expected is float else high,
        log=log,
        step=step,
        whole=expected is int,
    )


def parse_space(raw: Any, base: dict, source: str) -> SearchSpace:
    """Check a search space mapping against params.yaml's values (`base`)."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{source}: must be a mapping with {' and '.join(SECTIONS)}")
    for section in raw:
        if section not in SECTIONS:
            close = difflib.get_close_matches(str(section), SECTIONS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"give {' and '.join(SECTIONS)}"
            raise PipelineError(f"{source}: unknown section {section!r} ({hint})")
    fixed, search = raw.get("fixed") or {}, raw.get("search") or {}
    if not isinstance(fixed, dict) or not isinstance(search, dict):
        raise PipelineError(f"{source}: fixed and search must each map params.yaml keys")
    if not search:
        raise PipelineError(f"{source}: search is empty: name at least one params.yaml key")
    for key, value in fixed.items():
        _check_value(source, f"fixed.{_known_key(source, 'fixed', key)}", base, key, value)
    try:
        params_from_mapping(base | fixed, source="params.yaml")
    except ParamsError as error:
        raise PipelineError(f"{source}: fixed: {error}") from None
    both = sorted(set(fixed) & set(search))
    if both:
        raise PipelineError(f"{source}: {', '.join(both)} both fixed and searched: keep one")
    with_fixed = base | fixed
    dimensions = tuple(
        _dimension(source, with_fixed, _known_key(source, "search", key), spec)
        for key, spec in search.items()
    )
    return SearchSpace(fixed=dict(fixed), dimensions=dimensions)


def load_space(path: Path, base: dict) -> SearchSpace:
    """Read and check a search space file."""
    raw = read_yaml(path, "give --space FILE (see search_space.yaml)")
    return parse_space(raw, base, str(path))
