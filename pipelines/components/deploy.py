"""Canary deployment: deploy next to what serves now, smoke-test, then promote or roll back."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.ports import Deployment, Endpoint, ModelVersion


def canary_traffic(previous: Mapping[str, int], new_version: str, canary_percent: int) -> dict[str, int]:
    """``canary_percent`` to the new version, the rest shared by the old ones in proportion."""
    if not 0 < canary_percent <= 100:
        raise ValueError(f"canary_percent must be in 1..100, got {canary_percent}")
    old = {v: p for v, p in previous.items() if v != new_version and p > 0}
    total = sum(old.values())
    if not old or canary_percent == 100:
        return {new_version: 100}
    rest = 100 - canary_percent
    traffic = {v: (p * rest) // total for v, p in old.items()}
    first = next(iter(traffic))
    traffic[first] += rest - sum(traffic.values())  # rounding leftovers
    traffic[new_version] = canary_percent
    return traffic


def normalize(traffic: Mapping[str, int]) -> dict[str, int]:
    """Shares scaled to add up to 100 (what an endpoint accepts), rounding leftovers to the first."""
    total = sum(traffic.values())
    out = {v: (p * 100) // total for v, p in traffic.items()}
    first = next(iter(out))
    out[first] += 100 - sum(out.values())
    return out


def check_predictions(
    predictions: Sequence[Any], n_instances: int, metadata: Mapping[str, Any]
) -> str | None:
    """Why the predictions are unusable, or None when they look like this model's output."""
    if len(predictions) != n_instances:
        return f"expected {n_instances} predictions, got {len(predictions)}"
    classes = metadata.get("classes")
    for i, p in enumerate(predictions):
        value = p.get("prediction", p) if isinstance(p, Mapping) else p
        if value is None:
            return f"prediction {i} is empty"
        if metadata.get("task") == "regression":
            try:
                if not math.isfinite(float(value)):
                    return f"prediction {i} is not finite: {value!r}"
            except (TypeError, ValueError):
                return f"prediction {i} is not a number: {value!r}"
        elif classes and str(value) not in {str(c) for c in classes}:
            return f"prediction {i} ({value!r}) is not one of the model's classes {classes}"
    return None


def smoke_test(
    endpoint: Endpoint, version: str, instances: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any]
) -> str | None:
    """Send the instances to ``version`` on the endpoint; the reason it failed, or None."""
    if not instances:
        return "no smoke-test instances"
    try:
        predictions = endpoint.predict(instances, version=version)
    except Exception as exc:  # any failure to serve is the finding, not a crash of the step
        return f"prediction request failed: {type(exc).__name__}: {exc}"
    return check_predictions(predictions, len(instances), metadata)


def promote(endpoint: Endpoint, version: str) -> Deployment:
    """All traffic to ``version``; every other deployed version is undeployed."""
    deployment = endpoint.set_traffic({version: 100})
    for other in deployment.deployed:
        if other != version:
            deployment = endpoint.undeploy(other)
    return deployment


def rollback(endpoint: Endpoint, version: str, previous: Mapping[str, int]) -> Deployment:
    """Traffic back to what served before, and the new version undeployed."""
    # int(): a dict that went through a KFP struct parameter carries 90 as 90.0.
    restored = {str(v): int(p) for v, p in previous.items() if v != version and p > 0}
    if restored:
        endpoint.set_traffic(normalize(restored))
    return endpoint.undeploy(version)


def deploy_canary(
    endpoint: Endpoint, model: ModelVersion, canary_percent: int
) -> tuple[dict[str, int], Deployment]:
    """Deploy ``model`` with the canary share; returns the traffic before and the deployment after."""
    before = dict(endpoint.describe().traffic)
    if before.get(model.version) == 100:
        return before, endpoint.describe()
    deployment = endpoint.deploy(model, traffic_percent=canary_percent if before else 100)
    wanted = canary_traffic(before, model.version, canary_percent)
    if dict(deployment.traffic) != wanted:
        deployment = endpoint.set_traffic(wanted)
    return before, deployment
