"""The small interfaces the pipelines' components talk to, each with a Google Cloud and a local
implementation (``pipelines.registry``, ``pipelines.serving``, ``pipelines.alerts``).

Components pick the implementation at run time (never at import or compile time) with
``pipelines.backends`` from the environment of the task: ``MLOPS_BACKEND=vertex`` on Vertex AI
Pipelines (the default), ``local`` under ``kfp.local`` beside the local stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelVersion:
    model_name: str  # registry name of the (parent) model
    version: str  # version id: "1", "2", ...
    artifact_uri: str  # where the model files are (gs://... or a local path)
    aliases: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    resource_name: str | None = None  # projects/P/locations/L/models/M@V on Vertex
    created_at: str | None = None


class ModelRegistry(Protocol):
    def register(
        self,
        model_name: str,
        artifact_uri: str,
        *,
        labels: Mapping[str, str],
        metrics: Mapping[str, float],
        aliases: Sequence[str] = (),
        description: str = "",
    ) -> ModelVersion:
        """Register a new version under ``model_name`` (the parent model), creating it if new."""
        ...

    def get(self, model_name: str, version_or_alias: str) -> ModelVersion | None: ...

    def list_versions(self, model_name: str) -> list[ModelVersion]: ...

    def set_alias(self, model_name: str, version: str, alias: str) -> ModelVersion:
        """Move ``alias`` to ``version`` (removing it from any other version), atomically."""
        ...


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    traffic: Mapping[str, int]  # version -> percent
    deployed: tuple[str, ...] = ()


class Endpoint(Protocol):
    def deploy(self, model: ModelVersion, *, traffic_percent: int) -> Deployment: ...

    def predict(self, instances: Sequence[Mapping[str, Any]], *, version: str | None = None) -> list[Any]: ...

    def set_traffic(self, traffic: Mapping[str, int]) -> Deployment: ...

    def undeploy(self, version: str) -> Deployment: ...

    def describe(self) -> Deployment: ...


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish one message and return its message id."""
        ...
