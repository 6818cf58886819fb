"""Vertex AI Endpoint: deploy registry versions with a traffic split, predict, undeploy.

``google.cloud.aiplatform`` is imported inside the methods. Traffic is keyed by model version here
and by deployed-model id on Vertex; ``traffic_by_version`` / ``split_by_deployed_id`` translate.
The prebuilt scikit-learn image takes instances as lists: ``to_vertex_instances`` orders the
features of object instances by the model's ``feature_names``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.ports import Deployment, ModelVersion

DEFAULT_MACHINE_TYPE = "n1-standard-2"


def to_vertex_instances(instances: Sequence[Any], feature_names: Sequence[str] | None) -> list[list[Any]]:
    out: list[list[Any]] = []
    for instance in instances:
        if isinstance(instance, Mapping):
            names = list(feature_names) if feature_names else list(instance)
            missing = [n for n in names if n not in instance]
            if missing:
                raise ValueError(f"instance lacks feature(s) {missing}")
            out.append([instance[n] for n in names])
        else:
            out.append(list(instance))
    return out


def traffic_by_version(split: Mapping[str, int], versions: Mapping[str, str]) -> dict[str, int]:
    """Vertex ``traffic_split`` (deployed id -> percent) as version -> percent."""
    return {versions[d]: int(p) for d, p in split.items() if d in versions}


def split_by_deployed_id(traffic: Mapping[str, int], versions: Mapping[str, str]) -> dict[str, int]:
    """version -> percent as Vertex ``traffic_split``; every deployed model gets an entry."""
    by_version = {v: d for d, v in versions.items()}
    unknown = sorted(set(traffic) - set(by_version))
    if unknown:
        raise ValueError(f"versions {unknown} are not deployed (deployed: {sorted(by_version)})")
    if sum(traffic.values()) != 100:
        raise ValueError(f"traffic must add up to 100, got {dict(traffic)}")
    return {d: int(traffic.get(v, 0)) for d, v in versions.items()}


class VertexEndpoint:
    def __init__(
        self,
        name: str,
        project: str,
        location: str,
        *,
        feature_names: Sequence[str] | None = None,
        machine_type: str = DEFAULT_MACHINE_TYPE,
    ) -> None:
        self.name = name
        self.project = project
        self.location = location
        self.feature_names = list(feature_names) if feature_names else None
        self.machine_type = machine_type

    def _endpoint(self) -> Any:
        from google.cloud import aiplatform

        found = aiplatform.Endpoint.list(
            filter=f'display_name="{self.name}"', project=self.project, location=self.location
        )
        if found:
            return found[0]
        return aiplatform.Endpoint.create(
            display_name=self.name, project=self.project, location=self.location
        )

    @staticmethod
    def _versions(endpoint: Any) -> dict[str, str]:
        return {str(m.id): str(m.model_version_id) for m in endpoint.list_models()}

    def _describe(self, endpoint: Any) -> Deployment:
        versions = self._versions(endpoint)
        return Deployment(
            endpoint=self.name,
            traffic=traffic_by_version(endpoint.traffic_split or {}, versions),
            deployed=tuple(sorted(versions.values(), key=lambda v: (len(v), v))),
        )

    def deploy(self, model: ModelVersion, *, traffic_percent: int) -> Deployment:
        from google.cloud import aiplatform

        endpoint = self._endpoint()
        resource = model.resource_name or model.model_name
        vertex_model = aiplatform.Model(model_name=resource, project=self.project, location=self.location)
        endpoint.deploy(
            vertex_model,
            deployed_model_display_name=f"{model.model_name}-v{model.version}",
            traffic_percentage=traffic_percent,
            machine_type=self.machine_type,
            sync=True,
        )
        return self._describe(endpoint)

    def predict(self, instances: Sequence[Mapping[str, Any]], *, version: str | None = None) -> list[Any]:
        endpoint = self._endpoint()
        payload = to_vertex_instances(instances, self.feature_names)
        if version is None:
            return list(endpoint.predict(instances=payload).predictions)
        # One deployed model, bypassing the split: the smoke test of a canary.
        ids = {v: d for d, v in self._versions(endpoint).items()}
        if version not in ids:
            raise ValueError(f"version {version!r} is not deployed on endpoint {self.name!r}")
        response = endpoint.raw_predict(
            body=json.dumps({"instances": payload}).encode(),
            headers={"Content-Type": "application/json", "X-Vertex-AI-Deployed-Model-Id": ids[version]},
        )
        return list(json.loads(response.content)["predictions"])

    def set_traffic(self, traffic: Mapping[str, int]) -> Deployment:
        endpoint = self._endpoint()
        endpoint.update(traffic_split=split_by_deployed_id(traffic, self._versions(endpoint)))
        return self._describe(endpoint)

    def undeploy(self, version: str) -> Deployment:
        endpoint = self._endpoint()
        for deployed_id, v in self._versions(endpoint).items():
            if v == version:
                endpoint.undeploy(deployed_model_id=deployed_id, sync=True)
        return self._describe(endpoint)

    def describe(self) -> Deployment:
        return self._describe(self._endpoint())
