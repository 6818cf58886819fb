"""Model registry implementations of ``pipelines.ports.ModelRegistry``.

- ``local.LocalModelRegistry``: one JSON document per model in a bucket (or directory), updated
  with generation preconditions, emitting the audit-log CloudEvents Vertex would (``audit_events``).
- ``vertex.VertexModelRegistry``: Vertex AI Model Registry (parent model + version aliases).

Names follow Vertex's rules in both, so a name that works locally works on Vertex:
model ids ``[a-z_][a-z0-9_-]{0,62}``, aliases ``[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]``.
"""

from __future__ import annotations

import re
from typing import Final

MODEL_ID_RE: Final = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
ALIAS_RE: Final = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
DEFAULT_ALIAS: Final = "default"  # Vertex keeps it on the newest (default) version


class RegistryError(ValueError):
    """A registry call that cannot succeed as asked (bad name, unknown model or version)."""


def check_model_id(model_name: str) -> str:
    if not MODEL_ID_RE.fullmatch(model_name):
        raise RegistryError(
            f"model name {model_name!r} is not a valid Vertex model id: up to 63 of [a-z0-9_-], "
            "starting with a letter or underscore"
        )
    return model_name


def check_alias(alias: str) -> str:
    if not ALIAS_RE.fullmatch(alias):
        raise RegistryError(
            f"alias {alias!r} is invalid: [a-z][a-zA-Z0-9-]{{0,126}}[a-z0-9] (e.g. 'champion', 'challenger')"
        )
    return alias
