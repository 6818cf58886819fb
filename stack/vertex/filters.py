"""The subset of AIP-160 list filters that Vertex AI's list methods accept and this emulator
implements: comparisons joined by ``AND``.

    labels.mlops-pipeline="training" AND state="PIPELINE_STATE_SUCCEEDED"
    display_name="churn"   create_time>"2026-01-01T00:00:00Z"   labels.team:*

A comparison is ``field OP value`` with OP one of ``= != < <= > >=`` (times compare as times),
or ``labels.KEY:*`` (the label is present). Values may be quoted. ``OR``, ``NOT`` and
parentheses are refused with INVALID_ARGUMENT rather than silently misread.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from stack.vertex.errors import invalid_argument

Getter = Callable[[Any], str | None]

_TERM: Final = re.compile(
    r'\s*(?P<field>[A-Za-z_][\w.\-]*)\s*(?P<op>!=|<=|>=|=|<|>|:)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s"()]+)\s*'
)
_AND: Final = re.compile(r"AND\s+")


@dataclass(frozen=True)
class _Term:
    field: str
    op: str
    value: str


def _parse(text: str) -> list[_Term]:
    terms: list[_Term] = []
    pos = 0
    while True:
        m = _TERM.match(text, pos)
        if not m:
            raise invalid_argument(
                f"Unsupported filter {text!r} at position {pos}: expected FIELD=VALUE terms joined by AND.",
                "filter",
            )
        value = m.group("value")
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        terms.append(_Term(m.group("field"), m.group("op"), value))
        pos = m.end()
        if pos >= len(text):
            return terms
        sep = _AND.match(text, pos)
        if not sep:
            raise invalid_argument(
                f"Unsupported filter {text!r}: only AND joins terms here (no OR, NOT or parentheses).",
                "filter",
            )
        pos = sep.end()


def _time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _compare(actual: str | None, op: str, expected: str) -> bool:
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    if actual is None:
        return False
    a, e = _time(actual), _time(expected)
    left: Any = a if a is not None and e is not None else actual
    right: Any = e if a is not None and e is not None else expected
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _check(
    term: _Term, fields: Mapping[str, Getter], labels: Callable[[Any], Mapping[str, str]]
) -> Callable[[Any], bool]:
    if term.field.startswith("labels."):
        key = term.field[len("labels.") :]
        if term.op != ":":
            return lambda r: _compare(labels(r).get(key), term.op, term.value)
        if term.value != "*":
            raise invalid_argument(f"Unsupported filter term {term.field}:{term.value}.", "filter")
        return lambda r: key in labels(r)
    if term.field in fields and term.op != ":":
        getter = fields[term.field]
        return lambda r: _compare(getter(r), term.op, term.value)
    known = ", ".join([*fields, "labels.KEY"])
    raise invalid_argument(
        f"Unsupported filter field {term.field!r} (with {term.op!r}); supported: {known}.", "filter"
    )


def compile_filter(
    text: str,
    fields: Mapping[str, Getter],
    labels: Callable[[Any], Mapping[str, str]],
) -> Callable[[Any], bool]:
    """A predicate for ``text``; unknown fields are refused naming the fields that are known."""
    if not text.strip():
        return lambda _resource: True
    terms = _parse(text)
    checks = [_check(term, fields, labels) for term in terms]
    return lambda r: all(check(r) for check in checks)


def page(items: list[Any], page_size: int, token: str, default_size: int = 100) -> tuple[list[Any], str]:
    """One page of ``items`` and the token of the next (opaque to clients)."""
    try:
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError:
        raise invalid_argument(f"Invalid page_token {token!r}.", "page_token") from None
    size = page_size if page_size > 0 else default_size
    end = start + size
    return items[start:end], base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
