"""One structured JSON line on stdout per thing that happened: Cloud Logging reads it.

A line never exceeds ``MAX_LINE_BYTES``: Cloud Logging drops an entry above 256 KB (metadata
included), so a field that came from a hostile event (a 1 MB idempotency key, a deep parameter
value) is clipped rather than losing the whole line. Logging never raises.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Final

MAX_LINE_BYTES: Final = 200_000
_FIELD_CHARS: Final = 2_000


def log(severity: str, message: str, **fields: Any) -> None:
    """One structured line: Cloud Logging reads ``severity`` and ``message`` from stdout JSON."""
    entry = {"severity": severity, "message": message, **{k: v for k, v in fields.items() if v is not None}}
    sys.stdout.write(_line(entry) + "\n")
    sys.stdout.flush()


def _line(entry: dict[str, Any]) -> str:
    try:
        line = json.dumps(entry, default=str)
    except (ValueError, TypeError, RecursionError):
        line = ""
    if line and len(line) <= MAX_LINE_BYTES:
        return line
    # Too large (or not encodable): every field clipped to its first characters, as text.
    clipped = {k: v if k == "severity" else _clip(v) for k, v in entry.items()}
    clipped["truncated"] = True
    line = json.dumps(clipped)
    if len(line) <= MAX_LINE_BYTES:
        return line
    return json.dumps(
        {"severity": entry.get("severity"), "message": _clip(entry.get("message")), "truncated": True}
    )


def _clip(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    if not isinstance(value, str):
        try:
            value = json.dumps(value, default=str)
        except (ValueError, TypeError, RecursionError):
            value = f"<{type(value).__name__} that JSON cannot encode>"
    return value if len(value) <= _FIELD_CHARS else value[:_FIELD_CHARS] + f"...[{len(value)} chars]"
