"""Vertex AI Endpoint: deploy registry versions with a traffic split, predict, undeploy, delete.

Everything goes through the SDK's ``aiplatform.Endpoint``, configured by ``aiplatform.init``
(``pipelines.vertex_sdk``), so the configured API endpoint is honoured everywhere: no
``raw_predict`` (the SDK sends it to the regional host whatever the configured endpoint).

An endpoint is found by its display name (the name given) and created with that name as its id
when it is a valid endpoint id (``[a-z][a-z0-9-]{0,61}[a-z0-9]``), so two deployments racing to
create it get one endpoint. Traffic is keyed by model version here and by deployed-model id on
Vertex; ``traffic_by_version`` / ``split_by_deployed_id`` translate. An endpoint managed here
serves versions of one model.

Instances are sent as objects ``{feature: value}``: the serving container (``mlops-events
serve``) orders the features by the model's metadata and ignores other keys, so dict order
never matters and a label column is never taken for a feature.

Deployments use ``DEFAULT_MACHINE_TYPE`` (one replica) unless a machine type is given.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pipelines.ports import Deployment, ModelVersion, Prediction
from pipelines.vertex_sdk import VertexSettings, aiplatform

DEFAULT_MACHINE_TYPE: Final = "n1-standard-2"
ENDPOINT_ID: Final = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
ROLE_LABEL: Final = "mlops_role"  # "smoke-test" on a short-lived smoke-test endpoint
SMOKE_TEST_OF_LABEL: Final = "mlops_smoke_test_of"  # the endpoint it was made beside
STALE_SMOKE_TEST_SECONDS: Final = 3600  # a smoke-test endpoint older than this was left behind


class EndpointError(RuntimeError):
    """A deployment or prediction that cannot be done as asked; the message says why."""


def label_value(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def traffic_by_version(split: Mapping[str, int], versions: Mapping[str, str]) -> dict[str, int]:
    """Vertex ``traffic_split`` (deployed id -> percent) as version -> percent."""
    return {versions[d]: int(p) for d, p in split.items() if d in versions}


def split_by_deployed_id(traffic: Mapping[str, int], versions: Mapping[str, str]) -> dict[str, int]:
    """version -> percent as Vertex ``traffic_split``; every deployed model gets an entry."""
    by_version = {v: d for d, v in versions.items()}
    unknown = sorted(set(traffic) - set(by_version))
    if unknown:
        raise EndpointError(f"versions {unknown} are not deployed (deployed: {sorted(by_version)})")
    if sum(traffic.values()) != 100:
        raise EndpointError(f"traffic must add up to 100, got {dict(traffic)}")
    return {d: int(traffic.get(v, 0)) for d, v in versions.items()}


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


class VertexEndpoint:
    def __init__(
        self,
        name: str,
        vertex: VertexSettings,
        *,
        machine_type: str = DEFAULT_MACHINE_TYPE,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        if not name.strip():
            raise EndpointError("an endpoint needs a name")
        self.name = name
        self.vertex = vertex
        self.machine_type = machine_type
        self.labels = dict(labels or {})
        self._resource: Any = None

    def _sdk(self) -> Any:
        return aiplatform(self.vertex)

    def _endpoint(self, *, create: bool = True) -> Any:
        from google.api_core import exceptions as gexc

        if self._resource is not None:
            return self._resource
        sdk = self._sdk()
        escaped = self.name.replace("\\", "\\\\").replace('"', '\\"')
        found = sdk.Endpoint.list(filter=f'display_name="{escaped}"')
        if len(found) > 1:
            names = ", ".join(e.resource_name for e in found)
            raise EndpointError(
                f"{len(found)} endpoints have the display name {self.name!r} ({names}): name one"
            )
        if found:
            self._resource = found[0]
        elif create:
            endpoint_id = self.name if ENDPOINT_ID.match(self.name) else None
            try:
                self._resource = sdk.Endpoint.create(
                    display_name=self.name, endpoint_id=endpoint_id, labels=self.labels or None, sync=True
                )
            except gexc.Conflict:
                if endpoint_id is None:
                    raise
                self._resource = sdk.Endpoint(f"{self.vertex.parent}/endpoints/{endpoint_id}")
        return self._resource

    def _state(self, endpoint: Any) -> Deployment:
        """One GET of the endpoint: its deployed versions and their traffic."""
        deployed = endpoint.list_models()  # syncs the endpoint's resource
        models = sorted({d.model.rsplit("/", 1)[-1] for d in deployed})
        if len(models) > 1:
            raise EndpointError(
                f"endpoint {self.name!r} serves several models ({', '.join(models)}): the deployment "
                "pipeline manages one model per endpoint; give another endpoint_name"
            )
        versions = {str(d.id): str(d.model_version_id) for d in deployed}
        split = dict(endpoint.gca_resource.traffic_split)
        return Deployment(
            endpoint=self.name,
            traffic=traffic_by_version(split, versions),
            deployed=tuple(sorted(set(versions.values()), key=_version_order)),
            deployed_ids={v: d for d, v in versions.items()},
            resource_name=str(endpoint.resource_name),
        )

    # --- Endpoint ---------------------------------------------------------------------------

    def describe(self) -> Deployment:
        endpoint = self._endpoint(create=False)
        if endpoint is None:
            return Deployment(endpoint=self.name, traffic={})
        return self._state(endpoint)

    def deploy(self, model: ModelVersion, *, traffic_percent: int) -> Deployment:
        if not 0 <= traffic_percent <= 100:
            raise EndpointError(f"traffic_percent must be within 0..100, got {traffic_percent}")
        sdk = self._sdk()
        endpoint = self._endpoint()
        vertex_model = sdk.Model(model_name=model.resource_name or f"{model.model_name}@{model.version}")
        endpoint.deploy(
            vertex_model,
            deployed_model_display_name=f"{model.model_name}-v{model.version}"[:128],
            traffic_percentage=traffic_percent,
            machine_type=self.machine_type,
            min_replica_count=1,
            max_replica_count=1,
            sync=True,
        )
        return self._state(endpoint)

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> Prediction:
        endpoint = self._endpoint(create=False)
        if endpoint is None:
            raise EndpointError(f"there is no endpoint named {self.name!r}")
        answer = endpoint.predict(instances=[dict(i) for i in instances])
        return Prediction(
            predictions=[_plain(p) for p in answer.predictions],
            deployed_model_id=str(answer.deployed_model_id or ""),
            model_version_id=str(answer.model_version_id or ""),
            model=str(answer.model_resource_name or ""),
        )

    def set_traffic(self, traffic: Mapping[str, int]) -> Deployment:
        endpoint = self._endpoint()
        state = self._state(endpoint)
        versions = {d: v for v, d in state.deployed_ids.items()}
        endpoint.update(traffic_split=split_by_deployed_id(traffic, versions))
        return self._state(endpoint)

    def undeploy(self, version: str) -> Deployment:
        endpoint = self._endpoint()
        state = self._state(endpoint)
        deployed_id = state.deployed_ids.get(version)
        if deployed_id is None:
            raise EndpointError(f"version {version!r} is not deployed on endpoint {self.name!r}")
        endpoint.undeploy(deployed_model_id=deployed_id, sync=True)
        return self._state(endpoint)

    def smoke_test_endpoint(
        self, version: str, *, stale_after: float = STALE_SMOKE_TEST_SECONDS
    ) -> VertexEndpoint:
        """A new endpoint ``<name>-smoke-v<version>-<random>`` labelled as a smoke test of this
        one; smoke-test endpoints of this one left behind (older than ``stale_after`` seconds)
        are deleted first."""
        self._delete_stale_smoke_tests(stale_after)
        suffix = f"-smoke-v{version}-{uuid.uuid4().hex[:6]}"
        return VertexEndpoint(
            self.name[: 63 - len(suffix)].rstrip("-_") + suffix,
            self.vertex,
            machine_type=self.machine_type,
            labels={ROLE_LABEL: "smoke-test", SMOKE_TEST_OF_LABEL: label_value(self.name)},
        )

    def delete(self) -> None:
        endpoint = self._endpoint(create=False)
        if endpoint is not None:
            endpoint.delete(force=True, sync=True)  # undeploys every deployed model first
        self._resource = None

    # --- helpers ----------------------------------------------------------------------------

    def _delete_stale_smoke_tests(self, stale_after: float) -> None:
        sdk = self._sdk()
        wanted = (
            f'labels.{ROLE_LABEL}="smoke-test" AND labels.{SMOKE_TEST_OF_LABEL}="{label_value(self.name)}"'
        )
        now = datetime.now(UTC)
        for endpoint in sdk.Endpoint.list(filter=wanted):
            created = endpoint.gca_resource.create_time
            if created and (now - created).total_seconds() >= stale_after:
                endpoint.delete(force=True, sync=True)


def _plain(value: Any) -> Any:
    """A prediction as plain JSON values (the SDK may hand back proto map/list wrappers)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value
