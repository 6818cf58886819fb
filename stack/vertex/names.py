"""Resource names, project numbers and generated ids.

Vertex AI names every resource with the project *number* (``projects/123456789012/...``)
whichever spelling the caller used, and generates numeric ids (models, endpoints, deployed
models, operations). The emulator does the same: the first project id it sees gets the
configured number, any other id a number derived from it; a numeric project is taken as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Final

from stack.vertex.errors import invalid_argument

DEFAULT_PROJECT_NUMBER: Final = "123456789012"
_LOCATION: Final = re.compile(r"^projects/([^/]+)/locations/([^/]+)$")


def numeric_id() -> str:
    """A 19-digit id, the shape Vertex generates."""
    return str(10**18 + secrets.randbelow(8 * 10**18))  # 19 digits, within int64 (task ids are int64)


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename: readers never see half a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Projects:
    """Project id -> project number, kept in ``<state>/projects.json``."""

    def __init__(self, path: Path, default_number: str = DEFAULT_PROJECT_NUMBER) -> None:
        if not default_number.isdigit():
            raise ValueError(f"a project number is digits only, got {default_number!r}")
        self._path = path
        self._default = default_number
        self._lock = threading.Lock()
        self._numbers: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    def number(self, project: str) -> str:
        if project.isdigit():
            return project
        with self._lock:
            known = self._numbers.get(project)
            if known is None:
                used = set(self._numbers.values())
                known = self._default if self._default not in used else _derived(project)
                self._numbers[project] = known
                write_atomic(self._path, json.dumps(self._numbers, indent=1))
            return known

    def project_id(self, number: str) -> str:
        """The id a number was first seen with (the number itself when none)."""
        with self._lock:
            return next((p for p, n in self._numbers.items() if n == number), number)


def _derived(project: str) -> str:
    return str(10**11 + int(hashlib.sha256(project.encode()).hexdigest(), 16) % (9 * 10**11))


def split_location(parent: str, field: str = "parent") -> tuple[str, str]:
    """``projects/P/locations/L`` -> (P, L), or 400 naming the field."""
    m = _LOCATION.match(parent)
    if not m:
        raise invalid_argument(
            f"Invalid {field} {parent!r}: expected projects/{{project}}/locations/{{location}}.", field
        )
    return m.group(1), m.group(2)
