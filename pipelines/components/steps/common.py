"""What the steps share: alias names, the registry, version lookup, label values."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from pipelines.components.errors import ModelNotFoundError
from pipelines.ports import ModelVersion
from pipelines.registry import CHALLENGER, CHAMPION

__all__ = ["CHALLENGER", "CHAMPION", "get_version", "label_value"]
# Monitoring's default serving data: the serving container's records of the last N UTC days.
SERVING_RECORDS_ENV = "MLOPS_SERVING_RECORDS_URI"
SERVING_WINDOW_DAYS = 7


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def label_value(value: str) -> str:
    """A Vertex label value: lowercase letters, digits, ``_`` and ``-``, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


def _registry() -> Any:
    from pipelines import backends

    return backends.model_registry()


def get_version(model_name: str, version_or_alias: str, *, required: bool = True) -> ModelVersion | None:
    found: ModelVersion | None = _registry().get(model_name, version_or_alias)
    if found is None and required:
        raise ModelNotFoundError(
            f"model {model_name!r} has no version or alias {version_or_alias!r} in the registry"
        )
    return found
