"""Concurrency (``concurrency: skip|defer``)

One document per (pipeline, model) at ``mlops-state/runs/<pipeline>/<model>.json`` holds the run
our functions launched last. While it is active (asked from Vertex, or the emulator locally:
``pipelineJobs.get``; unknown counts as active until ``timeout``),
another launch for that model is skipped, or deferred (HTTP 500, redelivered later). Why a state
document rather than ``pipelineJobs.list`` with a label filter: the claim must be atomic with the
decision (two alerts at once must not both pass), list is eventually consistent and costs a
list call per event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from events import keys
from events.decision import RunRequest
from events.options import Concurrency
from functions.guards.deferred import Deferred
from functions.settings import Settings
from functions.state import JsonDict, StateStore

_TERMINAL: Final = frozenset(
    {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED", "SUCCEEDED", "FAILED"}
)

RunStatus = Callable[[str], str | None]  # job id -> state ("PIPELINE_STATE_RUNNING", ...), None: unknown


class Busy(Exception):
    """A run of the same pipeline for the same model is active and the rule says skip."""


def claim_run(
    store: StateStore,
    request: RunRequest,
    model: str,
    concurrency: Concurrency,
    *,
    clock: Callable[[], float],
    run_status: RunStatus,
) -> None:
    """Record ``request`` as the model's active run; raise ``Busy`` (skip) or ``Deferred`` if another is."""
    key = _runs_key(request, model)
    for _ in range(3):
        busy = _try_claim(store, key, request, model, concurrency.timeout, clock)
        if busy is None:
            return
        state = run_status(busy["job_id"])
        if state not in _TERMINAL:
            what = (
                f"{request.pipeline} for {model} is still running "
                f"({busy['job_id']}, state {state or 'unknown'})"
            )
            if concurrency.mode == "defer":
                raise Deferred(f"concurrency: {what}; redelivered later")
            raise Busy(f"concurrency: {what}; skipped")
        _clear_run(store, key, busy)  # it has finished: clear it (only if unchanged), claim again
    raise Deferred(f"concurrency: could not claim {key} (it keeps changing); redelivered later")


def release_run(store: StateStore, request: RunRequest, model: str) -> None:
    """Give the claim back (a later guard said no), if it is still ours."""
    key = _runs_key(request, model)

    def update(current: JsonDict | None) -> JsonDict:
        doc = dict(current or {})
        if (doc.get("active") or {}).get("job_id") == request.job_id:
            doc["active"] = None
        return doc

    store.update(key, update)


def launcher_status(settings: Settings) -> RunStatus:
    """How to ask the configured launcher for a job's state."""
    if settings.launcher == "dry-run":
        return lambda job_id: "SUCCEEDED"
    from pipelines.launch.vertex import VertexConfig

    config = VertexConfig(
        project=settings.project or "local-project",
        region=settings.region,
        pipeline_root=settings.pipeline_root or "",
        api_endpoint=settings.vertex_api_endpoint,
    )

    def status(job_id: str) -> str | None:
        import requests

        if config.anonymous:
            session: Any = requests.Session()
        else:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            session = AuthorizedSession(credentials)
        parent = f"projects/{config.project}/locations/{config.region}"
        response = session.get(f"{config.base_url}/v1/{parent}/pipelineJobs/{job_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return str(response.json().get("state"))

    return status


def _runs_key(request: RunRequest, model: str) -> str:
    return f"runs/{keys.slug(request.pipeline, 40)}/{keys.slug(model, 60)}-{keys.digest(model, 8)}.json"


def _try_claim(
    store: StateStore,
    key: str,
    request: RunRequest,
    model: str,
    timeout: float,
    clock: Callable[[], float],
) -> JsonDict | None:
    """Record ``request`` as the active run unless another one is; return that other one."""
    now = clock()
    busy: list[JsonDict] = []

    def update(current: JsonDict | None) -> JsonDict:
        busy.clear()
        doc = dict(current or {"pipeline": request.pipeline, "model": model})
        active = doc.get("active")
        if active and active["job_id"] != request.job_id and now - active["at"] < timeout:
            busy.append(active)
            return doc
        doc["active"] = {"job_id": request.job_id, "at": now}
        return doc

    store.update(key, update)
    return busy[0] if busy else None


def _clear_run(store: StateStore, key: str, finished: Mapping[str, Any]) -> None:
    def update(current: JsonDict | None) -> JsonDict:
        doc = dict(current or {})
        if doc.get("active") == finished:
            doc["active"] = None
        return doc

    store.update(key, update)
