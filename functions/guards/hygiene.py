"""Hygiene (storage events; pure, no I/O)

Objects written by our pipelines never retrigger: custom metadata ``mlops-events-output: "true"``
or a name under ``PIPELINE_ROOT`` (same bucket). Temporary objects (``*.tmp``, ``*.temp``,
``*.part``, ``*~``, ``*_COPYING_*``, ``.../_temporary/...``) and zero-byte objects are skipped.
"""

from __future__ import annotations

import posixpath
import re
from typing import Final

from events.model import StorageObject
from events.options import Debounce

OUTPUT_METADATA: Final = "mlops-events-output"  # pipelines set it to "true" on what they write
TEMPORARY_NAME: Final = re.compile(r"(\.tmp|\.temp|\.part|~)$|_COPYING_|(^|/)_temporary/", re.IGNORECASE)


def check_hygiene(event: StorageObject, pipeline_root: str | None, debounce: Debounce | None) -> str | None:
    """Why ``event`` must not launch anything, or None."""
    if str(event.metadata.get(OUTPUT_METADATA, "")).lower() == "true":
        return f"{event.uri} was written by a pipeline (metadata {OUTPUT_METADATA}=true): outputs never retrigger"
    root = pipeline_root or ""
    if root.startswith(f"gs://{event.bucket}/") and event.uri.startswith(root.rstrip("/") + "/"):
        return f"{event.uri} is under PIPELINE_ROOT ({root}): pipeline outputs never retrigger"
    if TEMPORARY_NAME.search(event.name):
        return f"{event.name} is a temporary object (upload or copy in progress)"
    # A debounce marker (``_SUCCESS``) is usually empty, and is wanted.
    is_marker = debounce is not None and debounce.marker == posixpath.basename(event.name)
    if event.size == 0 and not is_marker:
        return f"{event.uri} is empty (zero bytes)"
    return None
