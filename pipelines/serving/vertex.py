"""Vertex AI Endpoint: deploy registry versions with a traffic split, predict, undeploy, delete.

Everything goes through ``aiplatform_v1``'s ``EndpointServiceClient`` and
``PredictionServiceClient`` (``pipelines.vertex_api``), so the configured API endpoint is honoured
everywhere. Traffic is moved as the SDK's ``Endpoint.deploy`` / ``undeploy`` move it: a new
deployment takes its percentage and the others are scaled down in proportion
(``allocate_traffic``); an undeployed model's share goes to the others in proportion
(``unallocate_traffic``).

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
from pipelines.vertex_api import VertexSettings, client

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


def allocate_traffic(split: Mapping[str, int], percent: int) -> dict[str, int]:
    """The ``traffic_split`` of a deploy giving the new model (key ``"0"``) ``percent``: the others
    scaled down in proportion, rounding remainders to the first ones (the SDK's rule)."""
    out: dict[str, int] = {}
    rest = 100 - percent
    if rest:
        left = rest
        for deployed_id, share in split.items():
            out[deployed_id] = int(share / 100 * rest)
            left -= out[deployed_id]
        for deployed_id in out:
            if left == 0:
                break
            out[deployed_id] += 1
            left -= 1
    out["0"] = percent
    return out


def unallocate_traffic(split: Mapping[str, int], deployed_id: str) -> dict[str, int]:
    """The ``traffic_split`` once ``deployed_id`` is undeployed: its share spread over the others
    in proportion (the SDK's rule); it is left out."""
    share = split.get(deployed_id, 0)
    out = {d: p for d, p in split.items() if d != deployed_id}
    left_over = 100 - share
    if deployed_id in split and left_over and out:
        left = 100
        for d, p in split.items():
            if d != deployed_id:
                out[d] = int(p / left_over * 100)
                left -= out[d]
        for d in out:
            if left == 0:
                break
            out[d] += 1
            left -= 1
    return out


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
        self._resource: str | None = None  # projects/N/locations/L/endpoints/ID, once found

    def _client(self) -> Any:
        return client(self.vertex, "endpoint")

    def _endpoint(self, *, create: bool = True) -> str | None:
        """The endpoint's resource name, found by display name (created when ``create``)."""
        from google.api_core import exceptions as gexc

        if self._resource is not None:
            return self._resource
        escaped = self.name.replace("\\", "\\\\").replace('"', '\\"')
        found = list(
            self._client().list_endpoints(
                request={"parent": self.vertex.parent, "filter": f'display_name="{escaped}"'}
            )
        )
        if len(found) > 1:
            names = ", ".join(e.name for e in found)
            raise EndpointError(
                f"{len(found)} endpoints have the display name {self.name!r} ({names}): name one"
            )
        if found:
            self._resource = str(found[0].name)
        elif create:
            endpoint_id = self.name if ENDPOINT_ID.match(self.name) else None
            request: dict[str, Any] = {
                "parent": self.vertex.parent,
                "endpoint": {"display_name": self.name, "labels": self.labels},
            }
            if endpoint_id:
                request["endpoint_id"] = endpoint_id
            try:
                self._resource = str(self._client().create_endpoint(request=request).result().name)
            except gexc.Conflict:
                if endpoint_id is None:
                    raise
                self._resource = f"{self.vertex.parent}/endpoints/{endpoint_id}"
        return self._resource

    def _state(self, resource: str) -> Deployment:
        """One GET of the endpoint: its deployed versions and their traffic."""
        endpoint = self._client().get_endpoint(name=resource)
        deployed = list(endpoint.deployed_models)
        models = sorted({d.model.rsplit("/", 1)[-1] for d in deployed})
        if len(models) > 1:
            raise EndpointError(
                f"endpoint {self.name!r} serves several models ({', '.join(models)}): the deployment "
                "pipeline manages one model per endpoint; give another endpoint_name"
            )
        versions = {str(d.id): str(d.model_version_id) for d in deployed}
        return Deployment(
            endpoint=self.name,
            traffic=traffic_by_version(dict(endpoint.traffic_split), versions),
            deployed=tuple(sorted(set(versions.values()), key=_version_order)),
            deployed_ids={v: d for d, v in versions.items()},
            resource_name=resource,
        )

    def _split(self, resource: str) -> tuple[dict[str, int], list[str]]:
        """The endpoint's traffic split and its deployed-model ids."""
        endpoint = self._client().get_endpoint(name=resource)
        return dict(endpoint.traffic_split), [str(d.id) for d in endpoint.deployed_models]

    # --- Endpoint ---------------------------------------------------------------------------

    def describe(self) -> Deployment:
        resource = self._endpoint(create=False)
        if resource is None:
            return Deployment(endpoint=self.name, traffic={})
        return self._state(resource)

    def deploy(self, model: ModelVersion, *, traffic_percent: int) -> Deployment:
        if not 0 <= traffic_percent <= 100:
            raise EndpointError(f"traffic_percent must be within 0..100, got {traffic_percent}")
        resource = self._endpoint()
        assert resource is not None  # created when missing
        split, _ = self._split(resource)
        if not split:
            if traffic_percent not in (0, 100):
                raise EndpointError(
                    f"endpoint {self.name!r} serves no model yet: the first deployment takes all of "
                    f"its traffic, not {traffic_percent}%"
                )
            traffic_percent = 100
        versioned = model.resource_name or f"{self.vertex.parent}/models/{model.model_name}@{model.version}"
        deployed_model = {
            "model": versioned,
            "display_name": f"{model.model_name}-v{model.version}"[:128],
            "dedicated_resources": {
                "machine_spec": {"machine_type": self.machine_type},
                "min_replica_count": 1,
                "max_replica_count": 1,
            },
        }
        self._client().deploy_model(
            endpoint=resource,
            deployed_model=deployed_model,
            traffic_split=allocate_traffic(split, traffic_percent),
        ).result(timeout=None)  # a deployment on Vertex takes minutes; the LRO says when it is done
        return self._state(resource)

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> Prediction:
        from google.protobuf import json_format, struct_pb2

        resource = self._endpoint(create=False)
        if resource is None:
            raise EndpointError(f"there is no endpoint named {self.name!r}")
        values = [json_format.ParseDict(dict(i), struct_pb2.Value()) for i in instances]
        answer = client(self.vertex, "prediction").predict(endpoint=resource, instances=values)
        return Prediction(
            predictions=[_plain(p) for p in answer.predictions],
            deployed_model_id=str(answer.deployed_model_id or ""),
            model_version_id=str(answer.model_version_id or ""),
            model=str(answer.model or ""),
        )

    def set_traffic(self, traffic: Mapping[str, int]) -> Deployment:
        resource = self._endpoint()
        assert resource is not None
        state = self._state(resource)
        versions = {d: v for v, d in state.deployed_ids.items()}
        self._client().update_endpoint(
            endpoint={"name": resource, "traffic_split": split_by_deployed_id(traffic, versions)},
            update_mask={"paths": ["traffic_split"]},
        )
        return self._state(resource)

    def undeploy(self, version: str) -> Deployment:
        resource = self._endpoint()
        assert resource is not None
        state = self._state(resource)
        deployed_id = state.deployed_ids.get(version)
        if deployed_id is None:
            raise EndpointError(f"version {version!r} is not deployed on endpoint {self.name!r}")
        self._undeploy(resource, deployed_id)
        return self._state(resource)

    def _undeploy(self, resource: str, deployed_id: str) -> None:
        split, _ = self._split(resource)
        self._client().undeploy_model(
            endpoint=resource,
            deployed_model_id=deployed_id,
            traffic_split=unallocate_traffic(split, deployed_id),
        ).result(timeout=None)

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
        resource = self._endpoint(create=False)
        if resource is not None:
            self._delete(resource)
        self._resource = None

    # --- helpers ----------------------------------------------------------------------------

    def _delete(self, resource: str) -> None:
        """Undeploy every model (those without traffic first, the SDK's order), then delete."""
        split, deployed = self._split(resource)
        for deployed_id in sorted(deployed, key=lambda d: (d in split, split.get(d, 0))):
            self._undeploy(resource, deployed_id)
        self._client().delete_endpoint(name=resource).result(timeout=None)

    def _delete_stale_smoke_tests(self, stale_after: float) -> None:
        wanted = (
            f'labels.{ROLE_LABEL}="smoke-test" AND labels.{SMOKE_TEST_OF_LABEL}="{label_value(self.name)}"'
        )
        now = datetime.now(UTC)
        for endpoint in self._client().list_endpoints(
            request={"parent": self.vertex.parent, "filter": wanted}
        ):
            created = endpoint.create_time
            if created and (now - created).total_seconds() >= stale_after:
                self._delete(str(endpoint.name))


def _plain(value: Any) -> Any:
    """A prediction as plain JSON values (the client hands back proto map/list wrappers)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value
