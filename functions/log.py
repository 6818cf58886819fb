"""One structured JSON line on stdout per thing that happened: Cloud Logging reads it."""

from __future__ import annotations

import json
import sys
from typing import Any


def log(severity: str, message: str, **fields: Any) -> None:
    """One structured line: Cloud Logging reads ``severity`` and ``message`` from stdout JSON."""
    entry = {"severity": severity, "message": message, **{k: v for k, v in fields.items() if v is not None}}
    sys.stdout.write(json.dumps(entry, default=str) + "\n")
    sys.stdout.flush()
