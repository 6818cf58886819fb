"""Typed reads from decoded JSON, each failure a ``ParseError`` that names the field and says why.

Field paths are written as they appear in the event (``message.data``, ``incident.state``) so an
operator can find the bad value in the dead-letter record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from events.errors import ParseError

_INT_RE = re.compile(r"^[+-]?\d{1,30}$")
# RFC 3339 (and the lenient forms Google emits): fractional seconds of any length, Z or an offset.
_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})?$")


def show(value: Any, limit: int = 60) -> str:
    """A short repr for error messages: never echo a whole payload."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def get(obj: Mapping[str, Any], camel: str) -> Any:
    """``obj[camel]``, else the snake_case spelling (proto JSON may use either)."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower())


def as_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ParseError(f"{where} must be a JSON object, got {type_name(value)}")
    return value


def opt_object(obj: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = get(obj, key)
    return {} if value is None else as_object(value, where)


def opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = get(obj, key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParseError(f"{where} must be a string, got {type_name(value)} {show(value)}")
    return value


def req_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = opt_str(obj, key, where)
    if not value:
        raise ParseError(f"{where} is missing or empty")
    return value


def str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParseError(f"{where} must be an array of strings, got {show(value)}")
    return tuple(value)


def str_map(value: Any, where: str) -> dict[str, str]:
    """A string-to-string map (labels, attributes, metadata). ``null`` is an empty map."""
    if value is None:
        return {}
    obj = as_object(value, where)
    for key, item in obj.items():
        if not isinstance(item, str):
            raise ParseError(f"{where}.{key} must be a string, got {type_name(item)} {show(item)}")
    return dict(obj)


def to_int(value: Any, where: str) -> int:
    """An integer sent as a JSON number or a decimal string (proto JSON writes int64 as strings)."""
    if isinstance(value, bool):
        raise ParseError(f"{where} must be an integer, got boolean {value}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value.strip())
    raise ParseError(f"{where} must be an integer (number or decimal string), got {show(value)}")


def to_float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ParseError(f"{where} must be a number, got {type_name(value)} {show(value)}")
    try:
        number = float(value)
    except ValueError:
        raise ParseError(f"{where} must be a number, got {show(value)}") from None
    if not math.isfinite(number):
        raise ParseError(f"{where} must be a finite number, got {show(value)}")
    return number


def parse_time(value: Any, where: str) -> datetime:
    """An RFC 3339 timestamp. Python's ``fromisoformat`` takes at most 6 fractional digits, Google
    sends up to 9 (nanoseconds): truncate. A timestamp without offset is taken as UTC."""
    if not isinstance(value, str):
        raise ParseError(f"{where} must be an RFC 3339 timestamp string, got {type_name(value)}")
    m = _TIME_RE.match(value.strip())
    if not m:
        raise ParseError(f"{where} is not an RFC 3339 timestamp: {show(value)}")
    date, clock, frac, offset = m.groups()
    text = f"{date}T{clock}" + (f".{frac[:6].ljust(6, '0')}" if frac else "")
    if offset and offset not in ("Z", "z"):
        text += offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ParseError(f"{where} is not a valid timestamp: {show(value)} ({exc})") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def opt_time(obj: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = get(obj, key)
    return None if value is None or value == "" else parse_time(value, where)
