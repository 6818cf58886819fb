"""The local endpoint: traffic state in the registry bucket, predictions by the local server.

State ``<registry root>/endpoints/<endpoint>.json`` (changed with compare-and-swap)::

    {"endpoint": "iris", "model_name": "iris", "traffic": {"1": 90, "2": 10},
     "deployed": {"1": {"artifact_uri": "...", "resource_name": "...", "deployed_at": "..."}, ...},
     "updated_at": "..."}

An endpoint serves versions of one model (the model's endpoint). ``LocalEndpoint.predict`` POSTs
to the prediction server at ``server_url`` (``MLOPS_ENDPOINT_URL``); without one it predicts in
this process with the same code the server runs (``ServingCore``), serving logs included.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pipelines import storage_io
from pipelines.ports import Deployment, ModelVersion
from pipelines.serving import METADATA_FILE, MODEL_FILE, check_traffic, rescale, route

log = logging.getLogger(__name__)


class EndpointError(RuntimeError):
    """A prediction or deployment that cannot be served as asked; the message says why."""

    status = 400


class NotDeployedError(EndpointError):
    status = 503


def endpoint_state_uri(root: str, endpoint: str) -> str:
    return storage_io.join(root, "endpoints", f"{endpoint}.json")


def serving_log_prefix(root: str, endpoint: str) -> str:
    return storage_io.join(root, "serving", endpoint) + "/"


def read_serving_records(root: str, endpoint: str, since: str | None = None) -> list[dict[str, Any]]:
    """Every serving-log line of ``endpoint`` (optionally from date ``since`` = YYYY-MM-DD on)."""
    records: list[dict[str, Any]] = []
    prefix = serving_log_prefix(root, endpoint)
    for uri in storage_io.list_uris(prefix):
        if not uri.endswith(".jsonl"):
            continue
        day = uri[len(prefix) :].split("/", 1)[0]
        if since and day < since:
            continue
        records += [json.loads(line) for line in storage_io.read_text(uri).splitlines() if line.strip()]
    return records


def _deployment(state: Mapping[str, Any] | None, endpoint: str) -> Deployment:
    if not state:
        return Deployment(endpoint=endpoint, traffic={}, deployed=())
    deployed = tuple(sorted(state["deployed"], key=lambda v: (len(v), v)))
    return Deployment(endpoint=endpoint, traffic=dict(state["traffic"]), deployed=deployed)


class LocalEndpoint:
    def __init__(self, name: str, root: str, server_url: str | None = None, timeout: float = 60.0) -> None:
        self.name = name
        self.root = root.rstrip("/")
        self.server_url = server_url.rstrip("/") if server_url else None
        self.timeout = timeout
        self._core: ServingCore | None = None

    @property
    def state_uri(self) -> str:
        return endpoint_state_uri(self.root, self.name)

    def _update(self, change: Any) -> Deployment:
        def apply(state: dict[str, Any] | None) -> dict[str, Any]:
            state = state or {"endpoint": self.name, "model_name": None, "traffic": {}, "deployed": {}}
            change(state)
            state["updated_at"] = datetime.now(UTC).isoformat()
            return state

        return _deployment(storage_io.cas_update_json(self.state_uri, apply), self.name)

    def deploy(self, model: ModelVersion, *, traffic_percent: int) -> Deployment:
        def change(state: dict[str, Any]) -> None:
            if state["model_name"] not in (None, model.model_name) and any(state["traffic"].values()):
                raise EndpointError(
                    f"endpoint {self.name!r} serves model {state['model_name']!r}, not {model.model_name!r}: "
                    "undeploy it first or use another endpoint"
                )
            state["model_name"] = model.model_name
            state["deployed"][model.version] = {
                "artifact_uri": model.artifact_uri,
                "resource_name": model.resource_name,
                "deployed_at": datetime.now(UTC).isoformat(),
            }
            state["traffic"] = rescale(state["traffic"], model.version, traffic_percent)

        return self._update(change)

    def set_traffic(self, traffic: Mapping[str, int]) -> Deployment:
        def change(state: dict[str, Any]) -> None:
            state["traffic"] = check_traffic(dict(traffic), frozenset(state["deployed"]))

        return self._update(change)

    def undeploy(self, version: str) -> Deployment:
        def change(state: dict[str, Any]) -> None:
            if version not in state["deployed"]:
                raise EndpointError(f"version {version!r} is not deployed on endpoint {self.name!r}")
            share = state["traffic"].pop(version, 0)
            del state["deployed"][version]
            if share and any(state["traffic"].values()):
                # Hand the undeployed version's share to the others, in proportion.
                state["traffic"] = rescale({**state["traffic"], version: 0}, version, 0)
                state["traffic"].pop(version)

        return self._update(change)

    def describe(self) -> Deployment:
        state = storage_io.read_json(self.state_uri) if storage_io.exists(self.state_uri) else None
        return _deployment(state, self.name)

    def predict(self, instances: Sequence[Mapping[str, Any]], *, version: str | None = None) -> list[Any]:
        body: dict[str, Any] = {"instances": list(instances)}
        if version is not None:
            body["version"] = version
        if self.server_url is None:
            if self._core is None:
                self._core = ServingCore(self.root)
            return list(self._core.predict(self.name, body, request_id=None)["predictions"])
        url = f"{self.server_url}/v1/endpoints/{self.name}:predict"
        req = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:1000]
            raise EndpointError(f"prediction server {url} answered {exc.code}: {detail}") from exc
        except OSError as exc:
            raise EndpointError(f"prediction server {url} unreachable: {exc}") from exc
        return list(answer["predictions"])


class LoadedModel:
    """A model artifact in memory: the estimator and its metadata."""

    def __init__(self, artifact_uri: str) -> None:
        import joblib

        self.artifact_uri = artifact_uri
        self.metadata: dict[str, Any] = json.loads(
            storage_io.read_bytes(storage_io.join(artifact_uri, METADATA_FILE))
        )
        self.estimator = joblib.load(
            io.BytesIO(storage_io.read_bytes(storage_io.join(artifact_uri, MODEL_FILE)))
        )
        self.feature_names: list[str] = list(self.metadata.get("feature_names") or [])
        if not self.feature_names:
            raise EndpointError(f"{artifact_uri}/{METADATA_FILE} has no feature_names")

    def named(self, instance: Any) -> dict[str, Any]:
        if isinstance(instance, Mapping):
            missing = [f for f in self.feature_names if f not in instance]
            if missing:
                raise EndpointError(f"instance lacks feature(s) {missing}; expected {self.feature_names}")
            return {f: instance[f] for f in self.feature_names}
        if isinstance(instance, list | tuple):
            if len(instance) != len(self.feature_names):
                raise EndpointError(
                    f"instance has {len(instance)} values, the model expects {len(self.feature_names)}: "
                    f"{self.feature_names}"
                )
            return dict(zip(self.feature_names, instance, strict=True))
        raise EndpointError(f"an instance must be an object or a list, got {type(instance).__name__}")

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=self.feature_names)
        out: list[Any] = self.estimator.predict(frame).tolist()
        return out


class ServingCore:
    """What the prediction server does for one request: route, load (cached), predict, log."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def model(self, artifact_uri: str) -> LoadedModel:
        with self._lock:
            if artifact_uri in self._models:
                return self._models[artifact_uri]
            loading = self._loading.setdefault(artifact_uri, threading.Lock())
        with loading:  # one load per artifact, even under concurrent first requests
            with self._lock:
                if artifact_uri in self._models:
                    return self._models[artifact_uri]
            loaded = LoadedModel(artifact_uri)
            with self._lock:
                self._models[artifact_uri] = loaded
            return loaded

    def predict(self, endpoint: str, body: Mapping[str, Any], request_id: str | None) -> dict[str, Any]:
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise EndpointError('the request body needs "instances": a non-empty list')
        request_id = request_id or str(body.get("request_id") or uuid.uuid4())
        uri = endpoint_state_uri(self.root, endpoint)
        state = storage_io.read_json(uri) if storage_io.exists(uri) else None
        if not state or not state["deployed"]:
            raise NotDeployedError(f"endpoint {endpoint!r} has no deployed model ({uri})")
        version = body.get("version")
        if version is not None:
            version = str(version)
            if version not in state["deployed"]:
                raise EndpointError(f"version {version!r} is not deployed on endpoint {endpoint!r}")
        else:
            version = route(request_id, state["traffic"])
            if version is None:
                raise NotDeployedError(f"endpoint {endpoint!r} sends no traffic to any version")
        model = self.model(state["deployed"][version]["artifact_uri"])
        rows = [model.named(instance) for instance in instances]
        predictions = model.predict(rows)
        self._log(endpoint, state.get("model_name"), version, request_id, rows, predictions)
        return {
            "predictions": predictions,
            "model": state.get("model_name"),
            "modelVersionId": version,
            "deployedModelId": version,
            "requestId": request_id,
        }

    def _log(
        self,
        endpoint: str,
        model_name: str | None,
        version: str,
        request_id: str,
        rows: list[dict[str, Any]],
        predictions: list[Any],
    ) -> None:
        now = datetime.now(UTC)
        lines = [
            json.dumps(
                {
                    "timestamp": now.isoformat(),
                    "request_id": request_id,
                    "endpoint": endpoint,
                    "model_name": model_name,
                    "version": version,
                    "instance": row,
                    "prediction": prediction,
                },
                default=str,
            )
            for row, prediction in zip(rows, predictions, strict=True)
        ]
        name = f"{now:%Y-%m-%d}/{now:%H%M%S%f}-{uuid.uuid4().hex[:12]}.jsonl"
        storage_io.write_bytes(
            serving_log_prefix(self.root, endpoint) + name,
            ("\n".join(lines) + "\n").encode(),
            "application/x-ndjson",
        )
