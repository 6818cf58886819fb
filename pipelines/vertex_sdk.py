"""How the components reach Vertex AI: the ``google-cloud-aiplatform`` SDK, initialised once per
process from ``VertexSettings``.

The API endpoint alone selects Vertex AI or the local Vertex AI emulator (``stack/vertex``):

- unset: Vertex's regional endpoint (``<region>-aiplatform.googleapis.com``), the SDK's default
  transport and Application Default Credentials (a task's service account on Vertex);
- ``http://HOST:PORT``: a local emulator: REST transport, anonymous credentials (nothing to
  find, nothing to leak);
- ``https://HOST`` or ``HOST``: another endpoint of Vertex (a private one), default credentials.

``google.cloud.aiplatform`` costs seconds to import: it is imported on first use, never at import.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VertexSettings:
    project: str
    location: str
    api_endpoint: str | None = None
    staging_bucket: str | None = None  # gs://bucket: where the SDK stages local model folders

    @property
    def local(self) -> bool:
        return bool(self.api_endpoint and self.api_endpoint.startswith("http://"))

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def init_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``aiplatform.init`` (credentials excepted) for these settings."""
        args: dict[str, Any] = {"project": self.project, "location": self.location}
        if self.staging_bucket:
            args["staging_bucket"] = self.staging_bucket
        if self.local:
            args["api_endpoint"] = self.api_endpoint
            args["api_transport"] = "rest"
        elif self.api_endpoint:
            args["api_endpoint"] = self.api_endpoint.removeprefix("https://").rstrip("/")
        return args


_lock = threading.Lock()
_initialised: VertexSettings | None = None


def aiplatform(settings: VertexSettings) -> Any:
    """The ``google.cloud.aiplatform`` module, initialised for ``settings`` (again when they
    changed since the last call in this process: the SDK's configuration is global)."""
    global _initialised
    from google.cloud import aiplatform as sdk

    with _lock:
        if _initialised != settings:
            args = settings.init_arguments()
            if settings.local:
                from google.auth.credentials import AnonymousCredentials

                args["credentials"] = AnonymousCredentials()
            sdk.init(**args)
            _initialised = settings
    return sdk
