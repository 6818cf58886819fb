"""Vertex AI Pipelines launcher: one ``pipelineJobs.create`` REST call per run request.

Why REST and not ``aiplatform.PipelineJob.submit()``: the SDK costs ~1.5 s and ~200 MB to import
(every v1 and v1beta1 service), and ``submit()`` makes hidden calls first (it creates the
pipeline-root bucket and looks up the project number, retried for minutes when it cannot reach them).
The REST call is the documented API
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs/create);
``google.auth`` and ``requests`` are imported on first use.

Idempotency: the job id is chosen by the router from the event's identity. Only a 409 whose
google.rpc status is ``ALREADY_EXISTS`` means a previous delivery created the job (Google also
answers 409 for ``ABORTED``, a concurrency conflict worth retrying). Then one GET tells whether
that job FAILED or was CANCELLED (``exists_failed``: ``mlops-events rerun`` starts a new attempt).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from events.decision import RunRequest
from pipelines.launch.base import LaunchResult, PermanentLaunchError, Templates, TransientLaunchError

# Status codes worth retrying: quota, and the server's own failures.
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class VertexConfig:
    project: str
    region: str
    pipeline_root: str
    service_account: str | None = None
    api_endpoint: str | None = (
        None  # e.g. a private endpoint, or http://127.0.0.1:PORT (the Vertex AI emulator)
    )
    timeout_seconds: float = 30.0

    @property
    def base_url(self) -> str:
        endpoint = self.api_endpoint or f"https://{self.region}-aiplatform.googleapis.com"
        if "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        return endpoint.rstrip("/")

    @property
    def anonymous(self) -> bool:
        # A plain-HTTP endpoint is a local emulator: no credentials to find, none to leak.
        return self.base_url.startswith("http://")


def set_caching(spec: dict[str, Any], enabled: bool) -> None:
    """Set every task's caching option, as the SDK's PipelineJob(enable_caching=...) does."""
    for component in [spec.get("root", {}), *spec.get("components", {}).values()]:
        for task in component.get("dag", {}).get("tasks", {}).values():
            task["cachingOptions"] = {"enableCache": enabled}


def _prepared_spec(spec: Mapping[str, Any], enable_caching: bool | None) -> dict[str, Any]:
    pipeline_spec = copy.deepcopy(dict(spec))
    if enable_caching is not None:
        set_caching(pipeline_spec, enable_caching)
    return pipeline_spec


class JobNotFoundError(PermanentLaunchError):
    """No pipeline job has this id."""


# Terminal states of a job that did not do its work: its event must be able to run again.
FAILED_STATES = frozenset({"PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"})


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(value: Any) -> Any:
    """``value`` with every lone UTF-16 surrogate in its strings replaced by U+FFFD.

    A Python str may hold one (JSON ``"\\udfff"`` in an event, a client that cut a string inside an
    emoji), but a proto string is UTF-8: Vertex refuses such a body with 400 INVALID_ARGUMENT, and
    the launch would fail forever. The job id is derived from the event as received, so a
    redelivery still finds the same job.
    """
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {valid_unicode(k): valid_unicode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [valid_unicode(v) for v in value]
    return value


def _job_fields(request: RunRequest, config: VertexConfig) -> dict[str, Any]:
    """Everything of the PipelineJob but its name and spec."""
    fields: dict[str, Any] = {
        "labels": valid_unicode(dict(request.labels)),
        "runtimeConfig": {
            "gcsOutputDirectory": config.pipeline_root,
            # A null is not a value of any parameter type: leave it out, as the SDK does.
            "parameterValues": valid_unicode({k: v for k, v in request.parameters.items() if v is not None}),
        },
    }
    if config.service_account:
        fields["serviceAccount"] = config.service_account
    if request.template_uri:
        # An Artifact Registry template: Vertex links the run to that template version.
        fields["templateUri"] = request.template_uri
    return fields


def job_body(request: RunRequest, spec: Mapping[str, Any], config: VertexConfig) -> dict[str, Any]:
    """The PipelineJob resource sent to Vertex (REST JSON)."""
    return {
        "displayName": request.job_id,
        "pipelineSpec": _prepared_spec(spec, request.enable_caching),
        **_job_fields(request, config),
    }


def encode_spec(spec: Mapping[str, Any], enable_caching: bool | None) -> str:
    """The JSON of a pipeline spec with the caching option applied: computed once per
    (pipeline, caching) by the launcher, because deep-copying and encoding the whole spec per
    request was most of a warm launch's own time."""
    return json.dumps(_prepared_spec(spec, enable_caching))


def encode_job_body(request: RunRequest, spec_json: str, config: VertexConfig) -> str:
    """``json.dumps(job_body(...))`` with the pre-encoded spec spliced in (the same JSON object)."""
    rest = _job_fields(request, config)
    head = json.dumps({"displayName": request.job_id})
    return f'{head[:-1]}, "pipelineSpec": {spec_json}, {json.dumps(rest)[1:]}'


class VertexLauncher:
    name = "vertex"

    def __init__(self, config: VertexConfig, templates: Templates) -> None:
        self.config = config
        self.templates = templates
        self._session: Any = None
        self._specs: dict[str, dict[str, Any]] = {}
        self._encoded: dict[tuple[str, bool | None], str] = {}  # (pipeline, caching) -> spec JSON
        self._lock = threading.Lock()

    def _http(self) -> Any:
        with self._lock:
            if self._session is None:
                if self.config.anonymous:
                    import requests

                    self._session = requests.Session()
                else:
                    import google.auth
                    from google.auth.transport.requests import AuthorizedSession

                    credentials, _ = google.auth.default(
                        scopes=["https://www.googleapis.com/auth/cloud-platform"]
                    )
                    self._session = AuthorizedSession(credentials)
                _settle_environment(self._session, self.config.base_url)
            return self._session

    def authorized_session(self) -> Any:
        """The session with Google credentials (cloud-platform scope), for other Google APIs the
        functions call (an object's metadata); None for a plain-HTTP endpoint (the emulator)."""
        return None if self.config.anonymous else self._http()

    def _spec(self, pipeline: str) -> dict[str, Any]:
        if pipeline not in self._specs:
            self._specs[pipeline] = self.templates.load(pipeline)
        return self._specs[pipeline]

    def _spec_json(self, pipeline: str, enable_caching: bool | None) -> str:
        key = (pipeline, enable_caching)
        encoded = self._encoded.get(key)
        if encoded is None:  # two threads may both encode once: same result, no lock needed
            encoded = self._encoded[key] = encode_spec(self._spec(pipeline), enable_caching)
        return encoded

    def launch(self, request: RunRequest) -> LaunchResult:
        body = encode_job_body(
            request, self._spec_json(request.pipeline, request.enable_caching), self.config
        )
        return self._post(request.job_id, body.encode("utf-8"))

    def create(self, job_id: str, job: Mapping[str, Any]) -> str:
        """Create a job from a PipelineJob resource (REST JSON); ``created`` or ``already_exists``."""
        return self._post(job_id, json.dumps(dict(job)).encode("utf-8")).status

    def _post(self, job_id: str, body: bytes) -> LaunchResult:
        import requests  # a dependency of google-auth's transport: already loaded by _http()

        parent = f"projects/{self.config.project}/locations/{self.config.region}"
        url = f"{self.config.base_url}/v1/{parent}/pipelineJobs"
        name = f"{parent}/pipelineJobs/{job_id}"
        try:
            response = self._http().post(
                url,
                params={"pipelineJobId": job_id},
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.config.timeout_seconds,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            # The job may have been created before the timeout: the retry will get ALREADY_EXISTS.
            raise TransientLaunchError(f"Vertex did not answer creating {job_id}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            created = response.json() if response.content else {}
            return LaunchResult(
                job_id, "created", str(created.get("name", name)), {"state": created.get("state")}
            )
        message, rpc_status = _error(response)
        if status == 409 and rpc_status == "ALREADY_EXISTS":
            return self._existing(job_id, name)
        if status in _TRANSIENT_STATUS or status == 409:  # 409 ABORTED: a conflict, worth a retry
            shown = f"{status} {rpc_status}" if rpc_status else str(status)
            raise TransientLaunchError(f"Vertex answered {shown} creating {job_id}: {message}")
        raise PermanentLaunchError(f"Vertex rejected {job_id} with {status}: {message}")

    def get_job(self, job_id: str) -> dict[str, Any]:
        """The PipelineJob resource (REST JSON). Raises LaunchError when it cannot be read."""
        import requests

        parent = f"projects/{self.config.project}/locations/{self.config.region}"
        url = f"{self.config.base_url}/v1/{parent}/pipelineJobs/{job_id}"
        try:
            response = self._http().get(url, timeout=self.config.timeout_seconds)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientLaunchError(f"Vertex did not answer reading {job_id}: {exc}") from exc
        if response.status_code == 200:
            job: dict[str, Any] = response.json()
            return job
        message, _ = _error(response)
        if response.status_code == 404:
            raise JobNotFoundError(f"no pipeline job {job_id} in {parent}")
        if response.status_code in _TRANSIENT_STATUS:
            raise TransientLaunchError(f"Vertex answered {response.status_code} reading {job_id}: {message}")
        raise PermanentLaunchError(f"Vertex could not read {job_id} ({response.status_code}): {message}")

    def _existing(self, job_id: str, name: str) -> LaunchResult:
        """A job with this id exists: say whether it failed, so a lost run never hides behind a 409."""
        state = str(self.get_job(job_id).get("state") or "")
        if state in FAILED_STATES:
            return LaunchResult(job_id, "exists_failed", name, {"state": state})
        return LaunchResult(job_id, "already_exists", name, {"state": state})


def _settle_environment(session: Any, url: str) -> None:
    """Resolve the proxy and CA-bundle environment once per instance, not per request: with
    ``trust_env`` requests rescans the whole environment on every call (the largest CPU item of a
    warm launch in the profile). Every call goes to the same endpoint, so the result is the same."""
    merged = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(merged.get("proxies") or {})
    if merged.get("verify") is not None:
        session.verify = merged["verify"]
    session.trust_env = False


def _error(response: Any) -> tuple[str, str | None]:
    """The message and google.rpc status name (``ALREADY_EXISTS``, ``ABORTED``...) of an error."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return str(response.text[:300]), None
    if not isinstance(error, dict):
        return str(response.text[:300]), None
    return str(error.get("message") or response.text[:300]), error.get("status")
