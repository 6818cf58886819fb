"""Times as Vertex AI and the audit log write them (RFC 3339, ``Z`` or an offset)."""

from __future__ import annotations

from datetime import datetime


def timestamp(text: str | None) -> float | None:
    """An RFC 3339 time as Vertex and the audit log write it, in POSIX seconds; None if absent or bad."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
