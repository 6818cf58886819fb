"""Deployment: a smoke test of the new version alone, then a canary beside what serves now,
then promote or roll back.

The smoke test provably reaches the new version: it is deployed alone (100%) on a short-lived
smoke-test endpoint, and the answer must name its deployed model and version
(``deployedModelId``, ``modelVersionId`` of the predict response); the endpoint is deleted after.
Only then does the version get a canary share of the real endpoint's traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.ports import Deployment, Endpoint, ModelVersion, Prediction


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


def _same_class(value: Any, cls: Any) -> bool:
    """JSON carries numbers as doubles: a class 1 comes back as 1.0."""
    if str(value) == str(cls):
        return True
    try:
        return float(value) == float(cls)
    except (TypeError, ValueError):
        return False


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
        elif classes and not any(_same_class(value, c) for c in classes):
            return f"prediction {i} ({value!r}) is not one of the model's classes {classes}"
    return None


def served_by(answer: Prediction, deployment: Deployment, model: ModelVersion) -> str | None:
    """Why ``answer`` was not given by ``model`` as deployed in ``deployment``, or None."""
    expected = deployment.deployed_ids.get(model.version)
    if expected is None:
        return f"v{model.version} is not deployed on {deployment.endpoint}"
    if answer.deployed_model_id != expected or answer.model_version_id != model.version:
        return (
            f"the answer came from deployed model {answer.deployed_model_id or '?'} (version "
            f"{answer.model_version_id or '?'}), not v{model.version} (deployed model {expected})"
        )
    model_id = answer.model.split("@", 1)[0].rsplit("/", 1)[-1]
    if model_id and model_id != model.model_name:
        return f"the answer came from model {answer.model}, not {model.model_name}"
    return None


@dataclass(frozen=True)
class SmokeResult:
    reason: str | None  # why it failed; None: passed
    endpoint: str = ""  # the smoke-test endpoint's display name
    deployed_model_id: str = ""  # who answered, as the predict response says
    model_version_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.reason is None,
            "reason": self.reason or "",
            "endpoint": self.endpoint,
            "deployed_model_id": self.deployed_model_id,
            "model_version_id": self.model_version_id,
        }


def smoke_test(
    endpoint: Endpoint,
    model: ModelVersion,
    instances: Sequence[Mapping[str, Any]],
    metadata: Mapping[str, Any],
) -> SmokeResult:
    """Deploy ``model`` alone on a smoke-test endpoint beside ``endpoint``, predict there, check
    that the answer came from it and looks like this model's output; always delete the
    smoke-test endpoint."""
    if not instances:
        return SmokeResult("no smoke-test instances")
    smoke = endpoint.smoke_test_endpoint(model.version)
    answer: Prediction | None = None
    try:
        deployment = smoke.deploy(model, traffic_percent=100)
        answer = smoke.predict(instances)
        reason = served_by(answer, deployment, model) or check_predictions(
            answer.predictions, len(instances), metadata
        )
    except Exception as exc:  # any failure to serve is the finding, not a crash of the step
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            smoke.delete()
        except Exception as exc:  # left behind: the next smoke test of this endpoint deletes it
            print(f"warning: smoke-test endpoint {smoke.name} not deleted: {type(exc).__name__}: {exc}")
    if answer is None:
        return SmokeResult(reason, smoke.name)
    return SmokeResult(reason, smoke.name, answer.deployed_model_id, answer.model_version_id)


def canary_check(
    endpoint: Endpoint, instances: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any]
) -> str | None:
    """The endpoint answers through its new split with this model's kind of output, or why not."""
    try:
        answer = endpoint.predict(instances)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return check_predictions(answer.predictions, len(instances), metadata)


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
    current = endpoint.describe()
    before = dict(current.traffic)
    if before.get(model.version) == 100:
        return before, current
    wanted = canary_traffic(before, model.version, canary_percent)
    if model.version in current.deployed:  # a rerun after a failure: deployed, not yet promoted
        return before, endpoint.set_traffic(wanted)
    deployment = endpoint.deploy(model, traffic_percent=wanted[model.version])
    if dict(deployment.traffic) != wanted:
        deployment = endpoint.set_traffic(wanted)
    return before, deployment
