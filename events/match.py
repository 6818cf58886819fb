"""Match criteria: does a rule's ``match`` accept an event? If not, say why.

Each criterion returns None when it accepts the event, or a short reason when it does not; the
router puts those reasons in the Skip it returns, so a dry run explains every decision.
A list value means any of; all criteria of a rule must accept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

from events.model import Event, ModelRegistryEvent, MonitoringAlert, StorageObject

Criterion = Callable[[Event, Any], str | None]


def _any(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _show(values: list[Any]) -> str:
    return "/".join(str(v) for v in values)


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A glob where ``*`` stays within one path segment and ``**`` crosses segments."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(pattern: str, text: str) -> bool:
    return bool(_glob(pattern).match(text))


def _field_in(label: str, actual: Any, wanted: Any, *, glob: bool = False, fold: bool = False) -> str | None:
    options = _any(wanted)
    a = str(actual).lower() if fold and actual is not None else actual
    for option in options:
        o = str(option).lower() if fold else option
        if a is not None and (glob_match(str(o), str(a)) if glob else str(a) == str(o)):
            return None
    return f"{label} {actual!r} is not {_show(options)}"


def _mapping(label: str, actual: Mapping[str, str], wanted: Mapping[str, Any]) -> str | None:
    for key, value in wanted.items():
        if key not in actual:
            return f"{label} has no {key!r}"
        if value != "*" and str(actual[key]) not in [str(v) for v in _any(value)]:
            return f"{label}.{key} is {actual[key]!r}, not {_show(_any(value))}"
    return None


def _storage(e: Event) -> StorageObject:
    assert isinstance(e, StorageObject)
    return e


def _fields(e: Event) -> dict[str, Any]:
    return e.fields()


def _suffix(e: Event, want: Any) -> str | None:
    name = _storage(e).name.lower()
    options = [str(s).lower() for s in _any(want)]
    return (
        None
        if any(name.endswith(s) for s in options)
        else f"name {_storage(e).name!r} does not end with {_show(options)}"
    )


def _registry_model(e: Event, want: Any) -> str | None:
    assert isinstance(e, ModelRegistryEvent)
    names = [n for n in (e.model_id, e.display_name, e.model) if n]
    if any(glob_match(str(w), n) for w in _any(want) for n in names):
        return None
    return f"model {e.display_name or e.model_id!r} is not {_show(_any(want))}"


def _model(e: Event, want: Any) -> str | None:
    if isinstance(e, ModelRegistryEvent):
        return _registry_model(e, want)
    return _field_in("model", _fields(e).get("model"), want, glob=True)


def _alias(e: Event, want: Any) -> str | None:
    assert isinstance(e, ModelRegistryEvent)
    wanted = set(_any(want))
    if wanted & set(e.aliases):
        return None
    return f"the call sets alias(es) {list(e.aliases)}, not {_show(list(wanted))}"


def _is_test(e: Event, want: Any) -> str | None:
    assert isinstance(e, MonitoringAlert)
    return None if e.is_test == want else ("a test notification" if e.is_test else "not a test notification")


CRITERIA: Final[dict[str, Criterion]] = {
    "bucket": lambda e, w: _field_in("bucket", _storage(e).bucket, w, glob=True),
    "prefix": lambda e, w: (
        None
        if any(_storage(e).name.startswith(str(p)) for p in _any(w))
        else f"name {_storage(e).name!r} is not under {_show(_any(w))}"
    ),
    "exclude": lambda e, w: next(
        (
            f"name {_storage(e).name!r} is excluded by {p}"
            for p in _any(w)
            if glob_match(str(p), _storage(e).name)
        ),
        None,
    ),
    "glob": lambda e, w: (
        None
        if any(glob_match(str(p), _storage(e).name) for p in _any(w))
        else f"name {_storage(e).name!r} does not match {_show(_any(w))}"
    ),
    "suffix": _suffix,
    "content_type": lambda e, w: _field_in("content type", _storage(e).content_type, w, glob=True, fold=True),
    "min_size": lambda e, w: None if _storage(e).size >= w else f"size {_storage(e).size} is below {w}",
    "max_size": lambda e, w: None if _storage(e).size <= w else f"size {_storage(e).size} is above {w}",
    "metadata": lambda e, w: _mapping("metadata", _storage(e).metadata, w),
    "topic": lambda e, w: _field_in("topic", _fields(e).get("topic"), w, glob=True),
    "attributes": lambda e, w: _mapping("attributes", _fields(e).get("attributes") or {}, w),
    "state": lambda e, w: _field_in("state", _fields(e).get("state"), w, fold=True),
    "source": lambda e, w: _field_in("source", _fields(e).get("source"), w),
    "policy_name": lambda e, w: _field_in("policy", _fields(e).get("policy_name"), w, glob=True),
    "policy_labels": lambda e, w: _mapping("policy labels", _fields(e).get("policy_labels") or {}, w),
    "model": _model,
    "is_test": _is_test,
    "pipeline": lambda e, w: _field_in("pipeline", _fields(e).get("pipeline"), w),
    "method": lambda e, w: _field_in("method", _fields(e).get("method"), w, glob=True),
    "alias": _alias,
    "api_version": lambda e, w: _field_in("API version", _fields(e).get("api_version"), w),
    "service": lambda e, w: _field_in("service", _fields(e).get("service"), w, glob=True),
}


def mismatch(event: Event, match: Mapping[str, Any]) -> str | None:
    """The first reason ``match`` rejects ``event``, or None when every criterion accepts it."""
    # Test notifications never match a rule that does not ask for them explicitly.
    if isinstance(event, MonitoringAlert) and event.is_test and "is_test" not in match:
        return "a test notification (match is_test: true to act on it)"
    for key, wanted in match.items():
        reason = CRITERIA[key](event, wanted)
        if reason:
            return reason
    return None
