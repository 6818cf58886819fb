"""How the components reach Vertex AI: Google's generated clients of ``google.cloud.aiplatform_v1``
(``ModelServiceClient``, ``EndpointServiceClient``, ``PredictionServiceClient``), one of each per
process and ``VertexSettings``.

The API endpoint alone selects Vertex AI or the local Vertex AI emulator (``stack/vertex``):

- unset: Vertex's regional endpoint (``<region>-aiplatform.googleapis.com``), the clients' default
  transport and Application Default Credentials (a task's service account on Vertex);
- ``http://HOST:PORT``: a local emulator: REST transport, anonymous credentials (nothing to
  find, nothing to leak);
- ``https://HOST`` or ``HOST``: another endpoint of Vertex (a private one), default credentials.

Why not the ``google-cloud-aiplatform`` SDK (``google.cloud.aiplatform``): it is these same clients
underneath, and importing it costs ~3 s of CPU in every task process against ~1.3 s for
``aiplatform_v1`` alone. Both are imported on first use, never at import.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final, Literal

Service = Literal["model", "endpoint", "prediction"]
_CLIENT_CLASSES: Final = {
    "model": "ModelServiceClient",
    "endpoint": "EndpointServiceClient",
    "prediction": "PredictionServiceClient",
}


@dataclass(frozen=True)
class VertexSettings:
    project: str
    location: str
    api_endpoint: str | None = None
    staging_bucket: str | None = None  # gs://bucket: where a local model folder is staged at upload

    @property
    def local(self) -> bool:
        return bool(self.api_endpoint and self.api_endpoint.startswith("http://"))

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def client_arguments(self) -> dict[str, Any]:
        """What the clients are built with (credentials excepted): the API endpoint, and the
        transport where it is not the default."""
        if self.local:
            return {"api_endpoint": self.api_endpoint, "transport": "rest"}
        if self.api_endpoint:
            return {"api_endpoint": self.api_endpoint.removeprefix("https://").rstrip("/")}
        return {"api_endpoint": f"{self.location}-aiplatform.googleapis.com"}


_lock = threading.Lock()
_clients: dict[tuple[VertexSettings, Service], Any] = {}


def client(settings: VertexSettings, service: Service) -> Any:
    """The ``aiplatform_v1`` client of ``service`` for ``settings`` (built once per process)."""
    with _lock:
        found = _clients.get((settings, service))
        if found is None:
            from google.api_core.client_options import ClientOptions
            from google.cloud import aiplatform_v1

            args = settings.client_arguments()
            kwargs: dict[str, Any] = {"client_options": ClientOptions(api_endpoint=args["api_endpoint"])}
            if "transport" in args:
                kwargs["transport"] = args["transport"]
            if settings.local:
                from google.auth.credentials import AnonymousCredentials

                kwargs["credentials"] = AnonymousCredentials()
            found = getattr(aiplatform_v1, _CLIENT_CLASSES[service])(**kwargs)
            _clients[(settings, service)] = found
    return found
