"""Pre-parsed copies of YAML files, so that a cold start never imports PyYAML.

PyYAML costs ~18 ms to import and its loader parses slowly; the functions read two kinds of YAML
on their first event: the rules file and the compiled templates. ``mlops-events bundle`` writes,
beside each of them, ``NAME.parsed.json``: the document and the SHA-256 of the exact bytes it was
parsed from. A reader uses the copy only when that digest matches the file as it is now, so an
edited or replaced YAML file is read as YAML again: the copy can be missing or stale, never wrong.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Final

SUFFIX: Final = ".parsed.json"


def copy_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def write(path: Path, document: Any) -> bool:
    """Write the parsed copy of ``path``; False (and nothing written) when ``document`` is not
    plain JSON (a YAML timestamp, say): readers then parse the YAML, as without a copy."""
    try:
        text = json.dumps({"sha256": _digest(path.read_bytes()), "document": document}, allow_nan=False)
    except (TypeError, ValueError):
        return False
    copy_path(path).write_text(text, encoding="utf-8")
    return True


def read(path: Path, data: bytes) -> Any | None:
    """The document parsed from ``data`` (the bytes of ``path``), or None without a matching copy."""
    try:
        copy = json.loads(copy_path(path).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(copy, dict) or copy.get("sha256") != _digest(data) or "document" not in copy:
        return None
    return copy["document"]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
