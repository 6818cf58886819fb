"""EndpointService and PredictionService: endpoints, deployed models, traffic, predictions.

``deployModel`` starts the model's serving process (see ``serving``) and completes its operation
once the process answers its health route; a process that exits or never becomes healthy fails
the operation with the tail of its log. The traffic split follows Vertex: keys are deployed
model ids, ``"0"`` in a deploy request means the model being deployed, a non-empty split
replaces the endpoint's and must add up to 100, an empty one leaves it as it is. A deployed model
that still has traffic can only be undeployed by a split that takes it away (or when it is the
last one). ``predict`` picks a deployed model at random in proportion to the split (seeded:
``predict_seed``) and forwards the request body to its ``AIP_PREDICT_ROUTE``.
"""

from __future__ import annotations

import json
import random
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

from google.cloud import aiplatform_v1 as v1
from google.protobuf import empty_pb2, json_format

from stack.vertex import protos
from stack.vertex.context import Context
from stack.vertex.errors import ApiError, failed_precondition, invalid_argument, not_found
from stack.vertex.filters import compile_filter, page
from stack.vertex.models import Models
from stack.vertex.names import numeric_id
from stack.vertex.operations import generic_metadata
from stack.vertex.serving import Serving

NEW: Final = "0"  # the deploy request's key for the model being deployed
_ENDPOINT_ID: Final = re.compile(r"^([1-9][0-9]{0,18}|[a-z]([a-z0-9-]{0,61}[a-z0-9])?)$")
_FIELDS: Final = {"display_name": lambda e: e.display_name}
_UPDATABLE: Final = {"display_name", "description", "labels", "traffic_split"}
_CONTAINER_STATUS: Final = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


def check_split(split: Mapping[str, int], deployed: set[str], field: str = "traffic_split") -> None:
    unknown = sorted(set(split) - deployed)
    if unknown:
        raise invalid_argument(
            f"{field} names {unknown}, which are not deployed on this endpoint (deployed: {sorted(deployed)}).",
            field,
        )
    if any(p < 0 or p > 100 for p in split.values()):
        raise invalid_argument(f"{field} percentages must be within [0, 100], got {dict(split)}.", field)
    if split and sum(split.values()) != 100:
        raise invalid_argument(
            f"{field} must add up to 100, got {dict(split)} ({sum(split.values())}).", field
        )


class Endpoints:
    def __init__(
        self, ctx: Context, models: Models, serving: Serving, predict_seed: int | None = None
    ) -> None:
        self.ctx = ctx
        self.models = models
        self.serving = serving
        self._endpoints: dict[str, Any] = {}
        self._rng = random.Random(predict_seed)

    def load(self) -> None:
        """Reload every endpoint and start its deployed models' serving processes again."""
        for name, endpoint in self.ctx.store.load_all("projects/*/locations/*/endpoints/*", protos.Endpoint):
            self._endpoints[name] = endpoint
            for deployed in endpoint.deployed_models:
                try:
                    model = self.models.resolve(f"{deployed.model}@{deployed.model_version_id}")
                except ApiError:
                    continue  # the version is gone: predictions to it will say so
                self.serving.start(name, deployed, model)

    def _find(self, name: str) -> Any:
        endpoint = self._endpoints.get(self.ctx.canonical(name))
        if endpoint is None:
            raise not_found(f"Endpoint {name}")
        return endpoint

    def _save(self, endpoint: Any) -> None:
        endpoint.update_time.CopyFrom(protos.timestamp())
        endpoint.etag = numeric_id()
        self.ctx.store.save(endpoint.name, endpoint)

    @staticmethod
    def _copy(endpoint: Any) -> Any:
        out = protos.Endpoint()
        out.CopyFrom(endpoint)
        return out

    # --- endpoints ----------------------------------------------------------------------------

    def create(self, request: Any) -> Any:
        parent = self.ctx.parent(request.parent)
        if not request.endpoint.display_name:
            raise invalid_argument("endpoint.display_name is required.", "endpoint.display_name")
        endpoint_id = request.endpoint_id or numeric_id()
        if not _ENDPOINT_ID.match(endpoint_id):
            raise invalid_argument(f"Invalid endpoint_id {endpoint_id!r}.", "endpoint_id")
        with self.ctx.lock:
            name = f"{parent.name}/endpoints/{endpoint_id}"
            if name in self._endpoints:
                raise ApiError("ALREADY_EXISTS", f"Endpoint {name} already exists.")
            endpoint = protos.Endpoint()
            endpoint.CopyFrom(request.endpoint)
            for output_only in ("deployed_models", "traffic_split", "create_time", "etag"):
                endpoint.ClearField(output_only)
            endpoint.name = name
            endpoint.create_time.CopyFrom(protos.timestamp())
            self._endpoints[name] = endpoint
            self._save(endpoint)
            metadata = generic_metadata(v1.CreateEndpointOperationMetadata.pb())
            return self.ctx.operations.done(name, metadata, self._copy(endpoint))

    def get(self, name: str) -> Any:
        with self.ctx.lock:
            return self._copy(self._find(name))

    def list(self, request: Any) -> Any:
        parent = self.ctx.parent(request.parent)
        keep = compile_filter(request.filter, _FIELDS, lambda e: e.labels)
        with self.ctx.lock:
            found = [
                self._copy(e)
                for n, e in self._endpoints.items()
                if n.startswith(parent.name + "/") and keep(e)
            ]
        found.sort(key=lambda e: protos.seconds(e.create_time))
        selected, token = page(found, request.page_size, request.page_token)
        response = v1.ListEndpointsResponse.pb()(next_page_token=token)
        response.endpoints.extend(selected)
        return response

    def update(self, request: Any) -> Any:
        paths = set(request.update_mask.paths)
        unsupported = sorted(paths - _UPDATABLE)
        if not paths or unsupported:
            raise invalid_argument(
                f"update_mask must name some of {sorted(_UPDATABLE)}, got {sorted(paths)}.", "update_mask"
            )
        with self.ctx.lock:
            endpoint = self._find(request.endpoint.name)
            if "traffic_split" in paths:
                split = dict(request.endpoint.traffic_split)
                check_split(split, {d.id for d in endpoint.deployed_models}, "endpoint.traffic_split")
                if endpoint.deployed_models and not split:
                    raise invalid_argument(
                        "endpoint.traffic_split must add up to 100.", "endpoint.traffic_split"
                    )
                endpoint.traffic_split.clear()
                endpoint.traffic_split.update(split)
            if "display_name" in paths:
                endpoint.display_name = request.endpoint.display_name
            if "description" in paths:
                endpoint.description = request.endpoint.description
            if "labels" in paths:
                endpoint.labels.clear()
                endpoint.labels.update(request.endpoint.labels)
            self._save(endpoint)
            return self._copy(endpoint)

    def delete(self, name: str) -> Any:
        with self.ctx.lock:
            endpoint = self._find(name)
            if endpoint.deployed_models:
                ids = [d.id for d in endpoint.deployed_models]
                raise failed_precondition(
                    f"Endpoint {endpoint.name} has deployed models {ids}: undeploy them first."
                )
            del self._endpoints[endpoint.name]
            self.ctx.store.delete(endpoint.name)
            metadata = generic_metadata(v1.DeleteOperationMetadata.pb())
            return self.ctx.operations.done(endpoint.name, metadata, empty_pb2.Empty())

    # --- deployments --------------------------------------------------------------------------

    def deploy(self, request: Any) -> Any:
        with self.ctx.lock:
            endpoint = self._find(request.endpoint)
            model = self.models.resolve(request.deployed_model.model, "deployed_model.model")
            deployed = protos.DeployedModel()
            deployed.CopyFrom(request.deployed_model)
            if not deployed.dedicated_resources.machine_spec.machine_type:
                raise invalid_argument(
                    "deployed_model.dedicated_resources.machine_spec.machine_type is required for this model.",
                    "deployed_model.dedicated_resources",
                )
            existing = {d.id for d in endpoint.deployed_models}
            if deployed.id and (
                not deployed.id.isdigit() or len(deployed.id) > 10 or deployed.id in existing
            ):
                raise invalid_argument(
                    f"deployed_model.id {deployed.id!r} must be 1-10 digits and new on the endpoint.",
                    "deployed_model.id",
                )
            split = dict(request.traffic_split)
            check_split(split, existing | {NEW})
            deployed.id = deployed.id or numeric_id()
            deployed.model = model.name
            deployed.model_version_id = model.version_id
            deployed.display_name = deployed.display_name or model.display_name
            deployed.create_time.CopyFrom(protos.timestamp())
            endpoint_name = endpoint.name
        metadata = generic_metadata(v1.DeployModelOperationMetadata.pb())
        return self.ctx.operations.start(
            endpoint_name, metadata, lambda: self._finish_deploy(endpoint_name, deployed, model, split)
        )

    def _finish_deploy(self, endpoint_name: str, deployed: Any, model: Any, split: dict[str, int]) -> Any:
        server = self.serving.start(endpoint_name, deployed, model)
        try:
            self.serving.wait_ready(server)
        except ApiError:
            self.serving.stop(deployed.id)
            raise
        with self.ctx.lock:
            endpoint = self._endpoints.get(endpoint_name)
            gone = sorted(set(split) - {NEW} - {d.id for d in endpoint.deployed_models}) if endpoint else []
            if endpoint is None or gone:
                self.serving.stop(deployed.id)
                raise failed_precondition(
                    f"Endpoint {endpoint_name} changed during the deployment ({gone or 'deleted'})."
                )
            endpoint.deployed_models.add().CopyFrom(deployed)
            if split:
                endpoint.traffic_split.clear()
                endpoint.traffic_split.update({deployed.id if k == NEW else k: v for k, v in split.items()})
            self._save(endpoint)
            self.models.set_deployed(model.name, model.version_id, endpoint_name, deployed.id, True)
            return v1.DeployModelResponse.pb()(deployed_model=deployed)

    def undeploy(self, request: Any) -> Any:
        with self.ctx.lock:
            endpoint = self._find(request.endpoint)
            ids = {d.id for d in endpoint.deployed_models}
            target = request.deployed_model_id
            if target not in ids:
                raise not_found(f"DeployedModel {target} on endpoint {endpoint.name}")
            rest = ids - {target}
            given = dict(request.traffic_split)
            if given:
                if given.get(target, 0):
                    raise invalid_argument(
                        f"traffic_split still gives {given[target]}% to the model being undeployed.",
                        "traffic_split",
                    )
                given.pop(target, None)
                check_split(given, rest)
                split = given
            else:
                if rest and endpoint.traffic_split.get(target, 0):
                    raise failed_precondition(
                        f"Deployed model {target} has {endpoint.traffic_split[target]}% of the traffic: "
                        "send a traffic_split that takes it away."
                    )
                split = {k: v for k, v in endpoint.traffic_split.items() if k != target}
            removed = next(d for d in endpoint.deployed_models if d.id == target)
            kept = [d for d in endpoint.deployed_models if d.id != target]
            del endpoint.deployed_models[:]
            endpoint.deployed_models.extend(kept)
            endpoint.traffic_split.clear()
            endpoint.traffic_split.update(split if rest else {})
            self._save(endpoint)
            self.models.set_deployed(removed.model, removed.model_version_id, endpoint.name, target, False)
            endpoint_name = endpoint.name
        metadata = generic_metadata(v1.UndeployModelOperationMetadata.pb())

        def stop() -> Any:
            self.serving.stop(target)
            return v1.UndeployModelResponse.pb()()

        return self.ctx.operations.start(endpoint_name, metadata, stop)

    # --- predictions --------------------------------------------------------------------------

    def _pick(self, endpoint_name: str) -> tuple[Any, Any]:
        with self.ctx.lock:
            endpoint = self._find(endpoint_name)
            weights = [(d, endpoint.traffic_split.get(d.id, 0)) for d in endpoint.deployed_models]
            weights = [(d, w) for d, w in weights if w > 0]
            if not weights:
                raise failed_precondition(f"Endpoint {endpoint.name} has no deployed model with traffic.")
            chosen = self._rng.choices([d for d, _ in weights], [w for _, w in weights])[0]
        server = self.serving.get(chosen.id)
        if server is None:
            raise ApiError("UNAVAILABLE", f"Deployed model {chosen.id} has no serving process.")
        self.serving.wait_ready(server)
        return chosen, server

    def _forward(self, server: Any, body: bytes, content_type: str) -> tuple[int, str, bytes]:
        req = urllib.request.Request(
            server.base + server.predict_route,
            data=body,
            headers={"Content-Type": content_type},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.headers.get("Content-Type", "application/json"), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()
        except OSError as exc:
            raise ApiError(
                "UNAVAILABLE", f"Deployed model {server.deployed_model_id} is unreachable: {exc}"
            ) from None

    @staticmethod
    def _container_error(deployed: Any, status: int, data: bytes) -> ApiError:
        kind = _CONTAINER_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        text = data.decode(errors="replace")[:2000]
        return ApiError(
            kind, f"The prediction container of deployed model {deployed.id} answered HTTP {status}: {text}"
        )

    def predict(self, request: Any) -> Any:
        deployed, server = self._pick(request.endpoint)
        body: dict[str, Any] = {"instances": [json_format.MessageToDict(v) for v in request.instances]}
        if request.HasField("parameters"):
            body["parameters"] = json_format.MessageToDict(request.parameters)
        status, _, data = self._forward(server, json.dumps(body).encode(), "application/json")
        if status != 200:
            raise self._container_error(deployed, status, data)
        try:
            answer = json.loads(data)
            predictions = answer["predictions"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(
                "INTERNAL",
                f"The prediction container of deployed model {deployed.id} answered without a 'predictions' list: "
                f"{data[:500].decode(errors='replace')}",
            ) from None
        response = v1.PredictResponse.pb()(
            deployed_model_id=deployed.id,
            model=deployed.model,
            model_version_id=deployed.model_version_id,
            model_display_name=self.models.resolve(
                f"{deployed.model}@{deployed.model_version_id}"
            ).display_name
            if deployed.model
            else "",
        )
        protos.parse_into({"predictions": predictions}, response, "")
        return response

    def raw_predict(self, endpoint: str, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
        deployed, server = self._pick(endpoint)
        status, answer_type, data = self._forward(server, body, content_type or "application/json")
        if status >= 400:
            raise self._container_error(deployed, status, data)
        headers = {
            "Content-Type": answer_type,
            "X-Vertex-AI-Deployed-Model-Id": deployed.id,
            "X-Vertex-AI-Model": deployed.model,
        }
        return status, headers, data
