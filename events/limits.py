"""Destinations and bounds of a launch: limited by the rules file, never chosen by an event.

An event chooses data. Where a run may read (``*_uri`` parameters), write (``output_uri``),
deploy (``endpoint_name``) and alert (``alerts_topic``), and how far numbers may go, is limited
here; each refusal names the limit. A model's ``limits:`` (``models:`` section) widens or narrows
the defaults:

    limits:
      data: ["gs://my-data/", "gs://shared-features/churn/"]   # URI prefixes runs may read
      outputs: ["gs://my-data/predictions/"]                   # URI prefixes runs may write
      endpoints: [churn, churn-*]                              # endpoint names (globs)
      alerts_topics: [alerts]                                  # topics drift alerts may go to
      ranges: {canary_percent: 1..20, hyperparameters.max_iter: 1..2000}   # bounds for numbers

Defaults without a ``limits:``: data and outputs in a bucket that a storage rule of the file
watches (any ``gs://`` bucket if none does), never a local path or another scheme; a model
deploys only to its own endpoint (empty or its own name); alerts go to a short topic name of the
project. And an output is never written where a storage rule would start a run (the router checks
that with the file's own rules). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from events.match import glob_match

LIMIT_KEYS: Final = frozenset({"data", "outputs", "endpoints", "alerts_topics", "ranges"})
OUTPUT_PARAMETER: Final = "output_uri"
ENDPOINT_PARAMETER: Final = "endpoint_name"
TOPIC_PARAMETER: Final = "alerts_topic"
_RANGE_RE: Final = re.compile(r"^\s*(-?\d+(?:\.\d+)?)?\s*\.\.\s*(-?\d+(?:\.\d+)?)?\s*$")
_TOPIC_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")  # a short Pub/Sub topic id


@dataclass(frozen=True)
class Limits:
    data: tuple[str, ...] | None = None
    outputs: tuple[str, ...] | None = None
    endpoints: tuple[str, ...] | None = None
    alerts_topics: tuple[str, ...] | None = None
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @classmethod
    def merged(cls, layers: Iterable[Limits]) -> Limits:
        """The first layer that sets a limit wins (entries are tried in file order)."""
        out: dict[str, Any] = {}
        ranges: dict[str, tuple[float | None, float | None]] = {}
        for layer in layers:
            for key in ("data", "outputs", "endpoints", "alerts_topics"):
                if key not in out and getattr(layer, key) is not None:
                    out[key] = getattr(layer, key)
            for name, bounds in layer.ranges.items():
                ranges.setdefault(name, bounds)
        return cls(**out, ranges=ranges)


def load_limits(raw: Any, where: str, problems: list[str]) -> Limits:
    if raw is None:
        return Limits()
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a mapping ({', '.join(sorted(LIMIT_KEYS))})")
        return Limits()
    unknown = sorted(set(raw) - LIMIT_KEYS)
    if unknown:
        problems.append(
            f"{where}: unknown limit(s) {', '.join(unknown)} (known: {', '.join(sorted(LIMIT_KEYS))})"
        )
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("data", "outputs", "endpoints", "alerts_topics"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                problems.append(f"{where}.{key}: must be a list of text")
                continue
            if key in ("data", "outputs") and any(not v.startswith("gs://") for v in value):
                problems.append(f"{where}.{key}: every entry must be a gs:// prefix")
            lists[key] = tuple(value)
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for name, text in (raw.get("ranges") or {}).items():
        found = _RANGE_RE.match(str(text))
        if not found or not any(found.groups()):
            problems.append(f"{where}.ranges.{name}: {text!r} is not a range such as 1..20")
            continue
        low, high = (float(g) if g is not None else None for g in found.groups())
        ranges[str(name)] = (low, high)
    return Limits(**lists, ranges=ranges)


def limit_problems(
    params: Mapping[str, Any],
    *,
    model: str | None,
    limits: Limits,
    where: str,
    watched_buckets: frozenset[str],
    retriggers: Callable[[str], str | None],
) -> list[str]:
    """Every launch parameter that goes beyond its limit, each naming the limit.

    ``where`` names the settings in force ("models: 'churn'"); ``retriggers(uri)`` names the
    storage rule an object written at ``uri`` would start, or None.
    """
    problems: list[str] = []
    for name, value in params.items():
        if isinstance(value, Mapping):
            for key, inner in value.items():
                dotted = f"{name}.{key}"
                if dotted in limits.ranges and isinstance(inner, int | float) and not isinstance(inner, bool):
                    problems += _range_problem(dotted, inner, limits.ranges[dotted], where)
            continue
        if not isinstance(value, str) or not value:
            if isinstance(value, int | float) and not isinstance(value, bool) and name in limits.ranges:
                problems += _range_problem(name, value, limits.ranges[name], where)
            continue
        if name == OUTPUT_PARAMETER:
            problems += _uri_problems(name, value, limits.outputs, watched_buckets, where, "outputs")
            rule = retriggers(value)
            if rule:
                problems.append(
                    f"parameter {name!r} is {value!r}: an object written there would start rule "
                    f"{rule} (outputs never go where a storage rule listens)"
                )
        elif name.endswith("_uri"):
            problems += _uri_problems(name, value, limits.data, watched_buckets, where, "data")
        elif name == ENDPOINT_PARAMETER:
            allowed = limits.endpoints or ((model,) if model else ())
            if not any(glob_match(p, value) for p in allowed):
                problems.append(
                    f"parameter {name!r} is {value!r}: model {model!r} may deploy only to "
                    f"{', '.join(allowed) or 'its own endpoint'} (limits.endpoints; {where})"
                )
        elif name == TOPIC_PARAMETER:
            if limits.alerts_topics is not None:
                if value not in limits.alerts_topics:
                    problems.append(
                        f"parameter {name!r} is {value!r}: alerts may go to {', '.join(limits.alerts_topics)} "
                        f"only (limits.alerts_topics; {where})"
                    )
            elif not _TOPIC_RE.match(value):
                problems.append(
                    f"parameter {name!r} is {value!r}: a short topic name of this project is expected"
                )
    return problems


def _uri_problems(
    name: str, value: str, prefixes: tuple[str, ...] | None, buckets: frozenset[str], where: str, key: str
) -> list[str]:
    problems = []
    for uri in (u.strip() for u in value.split(",") if u.strip()):
        if not uri.startswith("gs://"):
            problems.append(
                f"parameter {name!r}: {uri[:120]!r} is not a gs:// URI (runs read and write Cloud Storage only)"
            )
        elif prefixes is not None:
            if not any(uri.startswith(p) for p in prefixes):
                problems.append(
                    f"parameter {name!r}: {uri[:120]!r} is outside limits.{key} ({', '.join(prefixes)}; {where})"
                )
        elif buckets and uri[5:].split("/", 1)[0] not in buckets:
            problems.append(
                f"parameter {name!r}: {uri[:120]!r} is in a bucket no storage rule watches "
                f"({', '.join(sorted(buckets))}); allow it with limits.{key} in the models: section"
            )
    return problems


def _range_problem(
    name: str, value: float, bounds: tuple[float | None, float | None], where: str
) -> list[str]:
    low, high = bounds
    if (low is not None and value < low) or (high is not None and value > high):
        shown = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
        return [f"parameter {name!r} is {value}, outside limits.ranges {shown} ({where})"]
    return []
