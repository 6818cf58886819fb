"""What the stack's tools (demo, lineage, status) read from Vertex AI, over its v1 REST API.

The same REST the SDK and the launcher use, against the Vertex AI emulator locally: pipeline jobs
(listed with a filter: ``labels.mlops-pipeline="training"``), models and their versions, endpoints,
and ``:predict``. No side channel into the emulator's state directory: whatever the demo shows is
what a client of Vertex AI would see. ``requests`` is imported on first use; a plain-HTTP endpoint
is a local emulator and gets no credentials (as in ``pipelines.launch.vertex``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pipelines.launch.vertex import VertexConfig

# What the demo's progress needs of a job (the spec itself is large and never read here).
JOB_FIELDS: Final = (
    "name,displayName,state,labels,createTime,startTime,endTime,updateTime,error,jobDetail,runtimeConfig"
)


class VertexApiError(RuntimeError):
    """Vertex answered an error (or did not answer); the message has the status and the reason."""


@dataclass
class VertexClient:
    api_endpoint: str  # http://127.0.0.1:P (the emulator) or a Vertex API host
    project: str
    region: str
    timeout_seconds: float = 30.0
    _session: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def base_url(self) -> str:
        return self._config.base_url

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def _config(self) -> VertexConfig:
        return VertexConfig(self.project, self.region, pipeline_root="", api_endpoint=self.api_endpoint)

    def _http(self) -> Any:
        with self._lock:
            if self._session is None:
                if self._config.anonymous:
                    import requests

                    self._session = requests.Session()
                    self._session.trust_env = False  # a local emulator: never through a proxy
                else:
                    import google.auth
                    from google.auth.transport.requests import AuthorizedSession

                    credentials, _ = google.auth.default(
                        scopes=["https://www.googleapis.com/auth/cloud-platform"]
                    )
                    self._session = AuthorizedSession(credentials)
            return self._session

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import requests

        url = f"{self.base_url}/v1/{path}"
        try:
            response = self._http().request(method, url, timeout=self.timeout_seconds, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise VertexApiError(
                f"Vertex AI at {self.base_url} did not answer {method} {path}: {exc}"
            ) from exc
        if response.status_code != 200:
            try:
                error = response.json().get("error", {})
                reason = f"{error.get('status')}: {error.get('message')}"
            except ValueError:
                reason = response.text[:300]
            raise VertexApiError(f"{method} {path}: HTTP {response.status_code} {reason}")
        doc: dict[str, Any] = response.json() if response.content else {}
        return doc

    def _pages(self, path: str, key: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            page = self._call("GET", path, params={**params, **({"pageToken": token} if token else {})})
            yield from page.get(key) or []
            token = str(page.get("nextPageToken") or "")
            if not token:
                return

    # --- pipeline jobs -------------------------------------------------------------------------

    def list_jobs(self, filter: str = "", *, read_mask: str | None = JOB_FIELDS) -> list[dict[str, Any]]:
        """Pipeline jobs (REST JSON), newest first, matching an AIP-160 ``filter``."""
        params = {"pageSize": "100", **({"filter": filter} if filter else {})}
        if read_mask:
            params["readMask"] = read_mask
        return list(self._pages(f"{self.parent}/pipelineJobs", "pipelineJobs", params))

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"{self.parent}/pipelineJobs/{job_id}")

    # --- models and endpoints ------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """Every model (its default version), as ``models.list`` answers."""
        return list(self._pages(f"{self.parent}/models", "models", {"pageSize": "100"}))

    def list_versions(self, model_id: str) -> list[dict[str, Any]]:
        return list(
            self._pages(f"{self.parent}/models/{model_id}:listVersions", "models", {"pageSize": "100"})
        )

    def list_endpoints(self, filter: str = "") -> list[dict[str, Any]]:
        params = {"pageSize": "100", **({"filter": filter} if filter else {})}
        return list(self._pages(f"{self.parent}/endpoints", "endpoints", params))

    def endpoint(self, display_name: str) -> dict[str, Any] | None:
        """The endpoint with this display name (the project's endpoints are named after models)."""
        found = self.list_endpoints(f'display_name="{display_name}"')
        return found[0] if found else None

    def predict(
        self, endpoint_name: str, instances: Sequence[Any], headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """``endpoints.predict``: the PredictResponse (``predictions``, ``deployedModelId``, ...)."""
        path = (
            endpoint_name
            if endpoint_name.startswith("projects/")
            else f"{self.parent}/endpoints/{endpoint_name}"
        )
        return self._call(
            "POST", f"{path}:predict", json={"instances": list(instances)}, headers=dict(headers or {})
        )


def resource_id(name: str) -> str:
    """The last part of a resource name (``projects/N/locations/L/models/churn`` -> ``churn``)."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def for_stack(info: Mapping[str, Any]) -> VertexClient:
    """A client of the Vertex AI emulator of a running stack (its ``stack.json``)."""
    return VertexClient(
        str(info["vertex"]["url"]), str(info["project"]), str(info.get("region") or "us-central1")
    )
