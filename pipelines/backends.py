"""Choose the implementation of each port from the task's environment, at call time.

Components call these inside their function bodies (never at import or compile time), so the same
compiled pipeline uses Vertex on Vertex AI Pipelines and the local stack under ``kfp.local``.

Environment:
- ``MLOPS_BACKEND``: ``vertex`` (default) or ``local``.
- vertex: ``GOOGLE_CLOUD_PROJECT`` (else ``CLOUD_ML_PROJECT_ID``, which Vertex sets in its jobs),
  ``GOOGLE_CLOUD_REGION`` (else ``CLOUD_ML_REGION``), ``MLOPS_SERVING_IMAGE`` for uploads.
- local: ``MLOPS_REGISTRY_BUCKET`` (default ``mlops-registry``; a path or ``file://`` means a local
  directory) holds the registry, endpoint state and serving logs, on ``STORAGE_EMULATOR_HOST``;
  ``MLOPS_ENDPOINT_URL`` the prediction server (unset: predict in process);
  ``MLOPS_REGISTRY_EVENTS_URL`` where registry audit events are POSTed; ``MLOPS_STATE_DIR`` the
  outbox and file fallbacks; Pub/Sub: ``PUBSUB_EMULATOR_HOST``, else ``MLOPS_PUBSUB_PUSH_URL``,
  else a JSONL file per topic under ``MLOPS_STATE_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pipelines.ports import Endpoint, ModelRegistry, Publisher

Backend = Literal["vertex", "local"]
DEFAULT_REGISTRY_BUCKET = "mlops-registry"
DEFAULT_LOCAL_PROJECT = "local-project"
DEFAULT_REGION = "us-central1"


class BackendConfigError(ValueError):
    """The environment does not say enough to build a port; the message names the variable."""


def backend() -> Backend:
    value = os.environ.get("MLOPS_BACKEND", "vertex").strip().lower() or "vertex"
    if value not in ("vertex", "local"):
        raise BackendConfigError(f"MLOPS_BACKEND must be 'vertex' or 'local', got {value!r}")
    return "local" if value == "local" else "vertex"


def project() -> str:
    value = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUD_ML_PROJECT_ID")
    if value:
        return value
    if backend() == "local":
        return DEFAULT_LOCAL_PROJECT
    raise BackendConfigError("set GOOGLE_CLOUD_PROJECT (or run on Vertex AI, which sets CLOUD_ML_PROJECT_ID)")


def region() -> str:
    return os.environ.get("GOOGLE_CLOUD_REGION") or os.environ.get("CLOUD_ML_REGION") or DEFAULT_REGION


def registry_root() -> str:
    """``gs://<bucket>`` or a local directory: where the local registry, endpoints and logs live."""
    value = os.environ.get("MLOPS_REGISTRY_BUCKET") or DEFAULT_REGISTRY_BUCKET
    if value.startswith("gs://"):
        return value.rstrip("/")
    if value.startswith("file://") or "/" in value or value.startswith("."):
        return str(Path(value.removeprefix("file://")).resolve())
    return f"gs://{value}"


def state_dir() -> Path | None:
    value = os.environ.get("MLOPS_STATE_DIR")
    return Path(value) if value else None


def model_registry() -> ModelRegistry:
    if backend() == "local":
        from pipelines.registry.audit_events import EventSink
        from pipelines.registry.local import LocalModelRegistry

        return LocalModelRegistry(
            registry_root(),
            project=project(),
            location=region(),
            principal=os.environ.get("MLOPS_PRINCIPAL") or None,
            sink=EventSink.from_env(),
        )
    from pipelines.registry.vertex import VertexModelRegistry

    return VertexModelRegistry(project(), region())


def endpoint(name: str) -> Endpoint:
    if backend() == "local":
        from pipelines.serving.local import LocalEndpoint

        return LocalEndpoint(name, registry_root(), os.environ.get("MLOPS_ENDPOINT_URL") or None)
    from pipelines.serving.vertex import VertexEndpoint

    return VertexEndpoint(name, project(), region())


def publisher() -> Publisher:
    from pipelines import alerts

    if backend() == "vertex" or os.environ.get("PUBSUB_EMULATOR_HOST"):
        return alerts.PubSubPublisher(project())
    push_url = os.environ.get("MLOPS_PUBSUB_PUSH_URL")
    if push_url:
        return alerts.PushPublisher(project(), push_url)
    directory = state_dir()
    if directory is None:
        raise BackendConfigError(
            "no local Pub/Sub: set PUBSUB_EMULATOR_HOST, MLOPS_PUBSUB_PUSH_URL or MLOPS_STATE_DIR"
        )
    return alerts.FilePublisher(project(), directory)
