"""The small interfaces the pipelines' components talk to (``pipelines.registry.vertex``,
``pipelines.serving.vertex``, ``pipelines.alerts``), built by ``pipelines.backends`` from the
task's environment at run time (never at import or compile time).

There is one implementation of the registry and the endpoint: Vertex AI's, pointed by
``VERTEX_API_ENDPOINT`` at the Vertex AI emulator locally. Keeping the ports as protocols keeps
the steps' code about models and traffic, not about the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelVersion:
    model_name: str  # the registry id of the (parent) model: "churn", or a numeric id
    version: str  # version id: "1", "2", ...
    artifact_uri: str  # where the model files are (gs://...)
    aliases: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    resource_name: str | None = None  # projects/P/locations/L/models/M@V
    created_at: str | None = None
    display_name: str = ""  # the model's display name (= model_name for models this project creates)
    decisions: tuple[Mapping[str, str], ...] = ()  # approvals and rejections, oldest first


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

    def list_models(self) -> list[str]: ...

    def set_alias(
        self, model_name: str, version: str, alias: str, *, principal: str | None = None
    ) -> ModelVersion:
        """Move ``alias`` to ``version`` (removing it from any other version), atomically;
        ``principal``: who asks, where the service cannot tell from credentials (the emulator)."""
        ...

    def record_decision(
        self, model_name: str, version: str, decision: str, *, principal: str, reason: str
    ) -> ModelVersion:
        """Record a person's ``approved``/``rejected`` decision on a version (who and why)."""
        ...


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    traffic: Mapping[str, int]  # version -> percent
    deployed: tuple[str, ...] = ()  # versions deployed, in version order
    deployed_ids: Mapping[str, str] = field(default_factory=dict)  # version -> deployed model id
    resource_name: str = ""  # projects/P/locations/L/endpoints/E


@dataclass(frozen=True)
class Prediction:
    """An endpoint's answer and which deployed model gave it (Vertex says so in the response)."""

    predictions: list[Any]
    deployed_model_id: str
    model_version_id: str
    model: str  # the resource name of the model that served it


class Endpoint(Protocol):
    name: str

    def deploy(self, model: ModelVersion, *, traffic_percent: int) -> Deployment: ...

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> Prediction:
        """Instances are objects ``{feature: value}``: the request follows the traffic split."""
        ...

    def set_traffic(self, traffic: Mapping[str, int]) -> Deployment: ...

    def undeploy(self, version: str) -> Deployment: ...

    def describe(self) -> Deployment: ...

    def smoke_test_endpoint(self, version: str) -> Endpoint:
        """A new, empty endpoint beside this one, for the smoke test of ``version`` alone."""
        ...

    def delete(self) -> None:
        """Undeploy everything and delete the endpoint (a smoke-test endpoint, when done)."""
        ...


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish one message and return its message id."""
        ...
