"""Vertex AI's custom-container contract, as the serving container reads it, and the
``containerSpec`` an upload gives the Model so that Vertex starts this container.

Variables Vertex AI sets in a custom prediction container (custom-container requirements,
version 1.0.0 of that document; ``AIP_*`` must never be set by hand):

=====================  ===========================================================================
AIP_HTTP_PORT          the first ``containerSpec.ports`` entry; default ``8080``
AIP_HEALTH_ROUTE       ``containerSpec.healthRoute``; default
                       ``/v1/endpoints/<AIP_ENDPOINT_ID>/deployedModels/<AIP_DEPLOYED_MODEL_ID>``
AIP_PREDICT_ROUTE      ``containerSpec.predictRoute``; default ``<that path>:predict``
AIP_STORAGE_URI        ``gs://`` copy of the Model's ``artifactUri`` in a bucket Vertex manages
                       (empty when the Model has none)
AIP_ENDPOINT_ID        digits, the last segment of the Endpoint's name
AIP_DEPLOYED_MODEL_ID  digits, the DeployedModel's id
AIP_MODE               ``PREDICTION``; AIP_MODE_VERSION ``1.0.0``; AIP_FRAMEWORK ``CUSTOM_CONTAINER``
AIP_PROJECT_NUMBER     the project number; AIP_MACHINE_TYPE / AIP_ACCELERATOR_TYPE the deployment's
AIP_MODEL_NAME         = AIP_ENDPOINT_ID; AIP_VERSION_NAME = AIP_DEPLOYED_MODEL_ID (compatibility)
=====================  ===========================================================================

Outside Vertex (``AIP_*`` unset) the container listens on 8080 and answers ``/health`` and
``/predict``. Our own settings (``MLOPS_*``) come from the Model's ``containerSpec.env``, written
at upload by ``serving_container_spec``. Everything here is pure: no I/O, cheap to import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# Set by Vertex AI.
AIP_HTTP_PORT: Final = "AIP_HTTP_PORT"
AIP_HEALTH_ROUTE: Final = "AIP_HEALTH_ROUTE"
AIP_PREDICT_ROUTE: Final = "AIP_PREDICT_ROUTE"
AIP_STORAGE_URI: Final = "AIP_STORAGE_URI"
AIP_ENDPOINT_ID: Final = "AIP_ENDPOINT_ID"
AIP_DEPLOYED_MODEL_ID: Final = "AIP_DEPLOYED_MODEL_ID"
AIP_MODE: Final = "AIP_MODE"

# Ours, set on the Model's containerSpec.env at upload.
MODEL_NAME_ENV: Final = "MLOPS_MODEL_NAME"
MODEL_VERSION_ENV: Final = "MLOPS_MODEL_VERSION"
RECORDS_URI_ENV: Final = "MLOPS_SERVING_RECORDS_URI"
SAMPLE_RATE_ENV: Final = "MLOPS_SERVING_SAMPLE_RATE"
RECORDS_BATCH_ENV: Final = "MLOPS_SERVING_RECORDS_BATCH"
RECORDS_FLUSH_ENV: Final = "MLOPS_SERVING_RECORDS_FLUSH_SECONDS"
RECORDS_QUEUE_ENV: Final = "MLOPS_SERVING_RECORDS_QUEUE"
WORKERS_ENV: Final = "MLOPS_SERVING_WORKERS"
THREADS_ENV: Final = "MLOPS_SERVING_THREADS"

DEFAULT_PORT: Final = 8080
LOCAL_HEALTH_ROUTE: Final = "/health"
LOCAL_PREDICT_ROUTE: Final = "/predict"
SERVE_COMMAND: Final = ("mlops-events", "serve")
DEFAULT_SAMPLE_RATE: Final = 1.0
DEFAULT_RECORDS_BATCH: Final = 1000
DEFAULT_RECORDS_FLUSH_SECONDS: Final = 30.0
DEFAULT_RECORDS_QUEUE: Final = 20000
DEFAULT_WORKERS: Final = 1
DEFAULT_THREADS: Final = 8

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SettingsError(ValueError):
    """A serving setting has a value the container cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything the container reads from its environment, validated once at start."""

    port: int
    health_route: str
    predict_route: str
    storage_uri: str
    endpoint_id: str | None
    deployed_model_id: str | None
    model_name: str | None
    model_version: str | None
    records_uri: str | None
    sample_rate: float
    records_batch: int
    records_flush_seconds: float
    records_queue: int
    workers: int
    threads: int
    on_vertex: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check the settings; ``SettingsError`` lists every problem at once."""
        problems: list[str] = []

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float, kind: type, low: float, high: float) -> Any:
            raw = text(name)
            if raw is None:
                return kind(default)
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}")
                return kind(default)
            if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
                problems.append(f"{name} must be within {low:g}..{high:g}, got {raw!r}")
            return value

        endpoint_id = text(AIP_ENDPOINT_ID)
        deployed_id = text(AIP_DEPLOYED_MODEL_ID)
        vertex_base = (
            f"/v1/endpoints/{endpoint_id}/deployedModels/{deployed_id}"
            if endpoint_id and deployed_id
            else None
        )
        health = text(AIP_HEALTH_ROUTE) or vertex_base or LOCAL_HEALTH_ROUTE
        predict = text(AIP_PREDICT_ROUTE) or (
            f"{vertex_base}:predict" if vertex_base else LOCAL_PREDICT_ROUTE
        )
        for name, route in ((AIP_HEALTH_ROUTE, health), (AIP_PREDICT_ROUTE, predict)):
            if not route.startswith("/"):
                problems.append(f"{name} must be a path starting with '/', got {route!r}")
        if health == predict:
            problems.append(f"the health and predict routes must differ, both are {health!r}")
        storage_uri = text(AIP_STORAGE_URI) or ""
        if not storage_uri:
            problems.append(
                f"{AIP_STORAGE_URI} is empty: the Model needs an artifactUri (a folder with "
                "model.joblib and metadata.json), or pass --model-uri"
            )
        settings = cls(
            port=number(AIP_HTTP_PORT, DEFAULT_PORT, int, 1, 65535),
            health_route=health,
            predict_route=predict,
            storage_uri=storage_uri,
            endpoint_id=endpoint_id,
            deployed_model_id=deployed_id,
            model_name=text(MODEL_NAME_ENV),
            model_version=text(MODEL_VERSION_ENV),
            records_uri=(text(RECORDS_URI_ENV) or "").rstrip("/") or None,
            sample_rate=number(SAMPLE_RATE_ENV, DEFAULT_SAMPLE_RATE, float, 0.0, 1.0),
            records_batch=number(RECORDS_BATCH_ENV, DEFAULT_RECORDS_BATCH, int, 1, 1_000_000),
            records_flush_seconds=number(
                RECORDS_FLUSH_ENV, DEFAULT_RECORDS_FLUSH_SECONDS, float, 0.01, 86400
            ),
            records_queue=number(RECORDS_QUEUE_ENV, DEFAULT_RECORDS_QUEUE, int, 1, 10_000_000),
            workers=number(WORKERS_ENV, DEFAULT_WORKERS, int, 1, 64),
            threads=number(THREADS_ENV, DEFAULT_THREADS, int, 1, 256),
            on_vertex=env.get(AIP_MODE) == "PREDICTION",
        )
        if problems:
            raise SettingsError("serving settings: " + "; ".join(problems))
        return settings


def serving_container_spec(
    image: str,
    *,
    model_name: str,
    records_uri: str | None,
    sample_rate: float = DEFAULT_SAMPLE_RATE,
    model_version: str | None = None,
    port: int = DEFAULT_PORT,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Model's ``containerSpec`` (REST JSON, camelCase) that serves it with ``mlops-events serve``.

    ``records_uri`` None: no serving records. ``env``: more variables (never ``AIP_*``). Vertex does
    not tell a container its model version, so pass ``model_version`` when the upload knows it;
    records carry the deployed-model id either way. Raises ``ValueError`` naming a bad argument.
    """
    problems = []
    if not image.strip():
        problems.append("image is empty")
    if not model_name.strip():
        problems.append("model_name is empty")
    if not (isinstance(sample_rate, int | float) and 0.0 <= sample_rate <= 1.0):
        problems.append(f"sample_rate must be within 0..1, got {sample_rate!r}")
    if not 1 <= port <= 65535:
        problems.append(f"port must be within 1..65535, got {port!r}")
    extra = dict(env or {})
    for name in extra:
        if not _ENV_NAME.match(name) or name.startswith("AIP_"):
            problems.append(f"env name {name!r} is not allowed (a shell name, never AIP_*)")
    if problems:
        raise ValueError("serving container spec: " + "; ".join(problems))
    variables = {MODEL_NAME_ENV: model_name, SAMPLE_RATE_ENV: repr(float(sample_rate))}
    if model_version:
        variables[MODEL_VERSION_ENV] = model_version
    if records_uri:
        variables[RECORDS_URI_ENV] = records_uri.rstrip("/")
    variables.update(extra)
    return {
        "imageUri": image,
        "command": list(SERVE_COMMAND),
        "env": [{"name": k, "value": v} for k, v in variables.items()],
        "ports": [{"containerPort": port}],
        "predictRoute": LOCAL_PREDICT_ROUTE,
        "healthRoute": LOCAL_HEALTH_ROUTE,
    }
