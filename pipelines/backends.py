"""Build each port from the task's environment, at call time.

Components call these inside their function bodies (never at import or compile time). There is
one implementation of each port; only the API endpoint tells Vertex AI from the local emulator.

| variable | meaning | default |
|---|---|---|
| ``VERTEX_API_ENDPOINT`` | Vertex AI API endpoint; ``http://HOST:PORT`` = the local emulator (anonymous, REST) | Vertex's regional endpoint, default credentials |
| ``GOOGLE_CLOUD_PROJECT`` / ``CLOUD_ML_PROJECT_ID`` | project (Vertex sets the second in its tasks) | required |
| ``GOOGLE_CLOUD_REGION`` / ``CLOUD_ML_REGION`` | region | ``us-central1`` |
| ``MLOPS_STAGING_BUCKET`` | where a local model folder is staged at upload (kfp.local) | the bucket of ``PIPELINE_ROOT`` |
| ``MLOPS_SERVING_IMAGE`` | the serving image of uploads (compile writes it) | ``pipelines.images.BASE_IMAGE`` |
| ``MLOPS_SERVING_RECORDS_URI`` | where the serving container writes records (set on the Model) | no records |
| ``MLOPS_SERVING_SAMPLE_RATE`` | share of requests recorded (set on the Model) | 1.0 |
| ``PUBSUB_EMULATOR_HOST`` | the Pub/Sub emulator (google-cloud-pubsub reads it) | Pub/Sub |
| ``MLOPS_PUBSUB_PUSH_URL`` | the local stack's embedded dispatcher, when no Pub/Sub emulator is installed | unset |
"""

from __future__ import annotations

import os
from typing import Final

from pipelines.images import BASE_IMAGE, SERVING_IMAGE_ENV
from pipelines.ports import Endpoint, ModelRegistry, Publisher
from pipelines.vertex_api import VertexSettings

API_ENDPOINT_ENV: Final = "VERTEX_API_ENDPOINT"
STAGING_BUCKET_ENV: Final = "MLOPS_STAGING_BUCKET"
PIPELINE_ROOT_ENV: Final = "PIPELINE_ROOT"
RECORDS_URI_ENV: Final = "MLOPS_SERVING_RECORDS_URI"
SAMPLE_RATE_ENV: Final = "MLOPS_SERVING_SAMPLE_RATE"
PUSH_URL_ENV: Final = "MLOPS_PUBSUB_PUSH_URL"
DEFAULT_REGION: Final = "us-central1"


class BackendConfigError(ValueError):
    """The environment does not say enough to build a port; the message names the variable."""


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def project() -> str:
    value = _env("GOOGLE_CLOUD_PROJECT") or _env("CLOUD_ML_PROJECT_ID")
    if not value:
        raise BackendConfigError(
            "set GOOGLE_CLOUD_PROJECT (or run on Vertex AI, which sets CLOUD_ML_PROJECT_ID)"
        )
    return value


def region() -> str:
    return _env("GOOGLE_CLOUD_REGION") or _env("CLOUD_ML_REGION") or DEFAULT_REGION


def staging_bucket() -> str | None:
    """``gs://bucket`` for staging local model folders at upload: ``MLOPS_STAGING_BUCKET``
    (a bucket name or ``gs://`` URI), else the bucket of ``PIPELINE_ROOT``; None without either
    (an upload of a ``gs://`` artifact, as on Vertex AI Pipelines, stages nothing)."""
    value = _env(STAGING_BUCKET_ENV)
    if value:
        bucket = value.removeprefix("gs://").split("/", 1)[0]
        if not bucket:
            raise BackendConfigError(f"{STAGING_BUCKET_ENV} names no bucket: {value!r}")
        return f"gs://{bucket}"
    root = _env(PIPELINE_ROOT_ENV)
    if root.startswith("gs://") and root.removeprefix("gs://").split("/", 1)[0]:
        return "gs://" + root.removeprefix("gs://").split("/", 1)[0]
    return None


def vertex_settings() -> VertexSettings:
    return VertexSettings(
        project=project(),
        location=region(),
        api_endpoint=_env(API_ENDPOINT_ENV) or None,
        staging_bucket=staging_bucket(),
    )


def serving_image() -> str:
    """The image uploads name: what compile wrote into the task, else the components' image."""
    return _env(SERVING_IMAGE_ENV) or BASE_IMAGE


def sample_rate() -> float | None:
    raw = _env(SAMPLE_RATE_ENV)
    if not raw:
        return None
    try:
        rate = float(raw)
    except ValueError:
        raise BackendConfigError(f"{SAMPLE_RATE_ENV} must be a number within 0..1, got {raw!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise BackendConfigError(f"{SAMPLE_RATE_ENV} must be within 0..1, got {raw!r}")
    return rate


def model_registry() -> ModelRegistry:
    from pipelines.registry.vertex import VertexModelRegistry

    return VertexModelRegistry(
        vertex_settings(),
        serving_image=serving_image(),
        records_uri=_env(RECORDS_URI_ENV) or None,
        sample_rate=sample_rate(),
    )


def endpoint(name: str, *, machine_type: str | None = None) -> Endpoint:
    from pipelines.serving.vertex import DEFAULT_MACHINE_TYPE, VertexEndpoint

    return VertexEndpoint(name, vertex_settings(), machine_type=machine_type or DEFAULT_MACHINE_TYPE)


def publisher() -> Publisher:
    """Pub/Sub (the emulator with ``PUBSUB_EMULATOR_HOST``); the push publisher only where the
    local stack runs its embedded dispatcher instead (no Pub/Sub emulator installed)."""
    from pipelines import alerts

    push_url = _env(PUSH_URL_ENV)
    if push_url and not _env("PUBSUB_EMULATOR_HOST"):
        return alerts.PushPublisher(project(), push_url)
    return alerts.PubSubPublisher(project())
