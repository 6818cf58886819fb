"""Rule-level options beyond match/launch (debounce, cooldown, concurrency): their validators.

Each validator takes the option's raw YAML value and returns the problems found (empty when valid),
each naming the field. The router carries the raw options on the Launch decision; the edge
(``functions.guards``) parses them with the ``parse_*`` functions below and applies them, because
they need state. Pure: no I/O.

    debounce: {quiet: 60s, max_wait: 10m, marker: _SUCCESS, parameter: data_uri}
    cooldown: 6h                                  # at most one launch per model per 6 hours
    cooldown: {period: 6h, after: 3, within: 1h}  # ... and only once 3 incidents came within 1 hour
    concurrency: skip                             # or defer; or {mode: skip, timeout: 12h}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

OptionValidator = Callable[[Any], list[str]]

_DURATION_RE: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PARAM_RE: Final = re.compile(r"^[a-z_][a-z0-9_]*$")


def parse_duration(value: Any) -> float:
    """``30s``, ``10m``, ``6h``, ``1d`` (or a number of seconds) -> seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 10m, 6h)")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION_RE.match(str(value).strip())
        if not m:
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 10m, 6h)")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


@dataclass(frozen=True)
class Debounce:
    quiet: float = 60.0  # seconds without a new object before the window is released
    max_wait: float = 600.0  # the window is released at the latest this long after it opened
    marker: str | None = None  # an object with this base name in the folder releases the window
    parameter: str = "data_uri"  # the pipeline parameter that receives the window's URIs


@dataclass(frozen=True)
class Cooldown:
    period: float  # at most one launch per model within this many seconds
    after: int = 1  # launch only once this many distinct incidents arrived ...
    within: float | None = None  # ... within this many seconds


@dataclass(frozen=True)
class Concurrency:
    mode: Literal["skip", "defer"] = "skip"
    timeout: float = 12 * 3600.0  # a recorded run counts as active at most this long


def _field(problems: list[str], name: str, value: Any) -> float | None:
    try:
        return parse_duration(value)
    except ValueError as exc:
        problems.append(f"{name}: {exc}")
        return None


def parse_debounce(raw: Any) -> tuple[Debounce | None, list[str]]:
    if not isinstance(raw, dict):
        return None, ["must be a mapping like {quiet: 60s, max_wait: 10m, marker: _SUCCESS}"]
    problems: list[str] = []
    unknown = set(raw) - {"quiet", "max_wait", "marker", "parameter"}
    if unknown:
        problems.append(
            f"unknown key(s) {', '.join(sorted(unknown))} (use quiet, max_wait, marker, parameter)"
        )
    quiet = _field(problems, "quiet", raw.get("quiet", "60s"))
    max_wait = _field(problems, "max_wait", raw.get("max_wait", "10m"))
    if quiet is not None and max_wait is not None and max_wait < quiet:
        problems.append(f"max_wait: must be at least quiet ({raw.get('max_wait')} < {raw.get('quiet')})")
    marker = raw.get("marker")
    if marker is not None and (not isinstance(marker, str) or not marker or "/" in marker):
        problems.append(f"marker: {marker!r} must be an object base name such as _SUCCESS, or null")
    parameter = raw.get("parameter", "data_uri")
    if not isinstance(parameter, str) or not _PARAM_RE.match(parameter):
        problems.append(f"parameter: {parameter!r} must be a pipeline parameter name")
    if problems or quiet is None or max_wait is None:
        return None, problems
    return Debounce(quiet, max_wait, marker, parameter), []


def parse_cooldown(raw: Any) -> tuple[Cooldown | None, list[str]]:
    problems: list[str] = []
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        period = _field(problems, "period", raw)
        return (Cooldown(period), []) if period is not None else (None, problems)
    if not isinstance(raw, dict):
        return None, ["must be a duration (6h) or a mapping {period: 6h, after: 3, within: 1h}"]
    unknown = set(raw) - {"period", "after", "within"}
    if unknown:
        problems.append(f"unknown key(s) {', '.join(sorted(unknown))} (use period, after, within)")
    if "period" not in raw:
        problems.append("period: required (e.g. 6h)")
    period = _field(problems, "period", raw.get("period", 0))
    after = raw.get("after", 1)
    if not isinstance(after, int) or isinstance(after, bool) or after < 1:
        problems.append(f"after: {after!r} must be a positive integer")
    within = _field(problems, "within", raw["within"]) if "within" in raw else None
    if isinstance(after, int) and after > 1 and "within" not in raw:
        problems.append("within: required when after > 1 (e.g. within: 1h)")
    if problems or period is None:
        return None, problems
    return Cooldown(period, after, within), []


def parse_concurrency(raw: Any) -> tuple[Concurrency | None, list[str]]:
    if isinstance(raw, str):
        raw = {"mode": raw}
    if not isinstance(raw, dict):
        return None, ["must be skip, defer, or {mode: skip|defer, timeout: 12h}"]
    problems: list[str] = []
    unknown = set(raw) - {"mode", "timeout"}
    if unknown:
        problems.append(f"unknown key(s) {', '.join(sorted(unknown))} (use mode, timeout)")
    mode = raw.get("mode", "skip")
    if mode not in ("skip", "defer"):
        problems.append(f"mode: {mode!r} must be skip or defer")
    timeout = _field(problems, "timeout", raw.get("timeout", "12h"))
    if problems or timeout is None:
        return None, problems
    return Concurrency(mode, timeout), []


OPTION_VALIDATORS: dict[str, OptionValidator] = {
    "debounce": lambda raw: parse_debounce(raw)[1],
    "cooldown": lambda raw: parse_cooldown(raw)[1],
    "concurrency": lambda raw: parse_concurrency(raw)[1],
}
