"""Steps of deployment: smoke test on a short-lived endpoint, canary, check, promote or roll back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipelines.components import data as data_mod
from pipelines.components.errors import (
    CanaryFailed,
    SmokeTestFailed,
)
from pipelines.components.steps.common import (
    get_version,
)
from pipelines.ports import ModelVersion

# --- deployment ---------------------------------------------------------------------------------


def _endpoint(endpoint_name: str, model: ModelVersion) -> Any:
    """The endpoint named ``endpoint_name``, else the model's own (named by its display name,
    which is its id for the models this project registers)."""
    from pipelines import backends

    return backends.endpoint(endpoint_name or model.display_name or model.model_name)


def _smoke_instances(model: ModelVersion, smoke_test_uri: str, rows: int) -> tuple[list[Any], dict[str, Any]]:
    """Objects ``{feature: value}`` for a smoke test (the model's feature columns of the file, or
    of the version's reference sample), and the version's metadata. A label column or any other
    column is not sent; a missing feature is left for the serving container to name."""
    from pipelines.components import training

    meta = training.load_metadata(model.artifact_uri)
    if smoke_test_uri:
        frame = data_mod.load_dataset(smoke_test_uri)
    else:
        frame = data_mod.read_table(training.resolve_uri(meta["reference_uri"], model.artifact_uri))
    records = json.loads(frame.head(rows).to_json(orient="records"))
    features = list(meta["feature_names"])
    instances = [{f: record[f] for f in features if f in record} for record in records]
    return instances, meta


def smoke_test(
    *, model_name: str, version: str, endpoint_name: str, smoke_test_uri: str, rows: int = 5
) -> dict[str, Any]:
    """The version alone on a short-lived smoke-test endpoint (``deploy.smoke_test``)."""
    from pipelines.components import deploy

    mv = get_version(model_name, version)
    assert mv is not None
    instances, meta = _smoke_instances(mv, smoke_test_uri, rows)
    result = deploy.smoke_test(_endpoint(endpoint_name, mv), mv, instances, meta)
    print(
        f"smoke test of {mv.model_name} v{mv.version} alone on {result.endpoint or 'a smoke-test endpoint'} "
        f"({len(instances)} instances, answered by deployed model {result.deployed_model_id or '-'}, "
        f"version {result.model_version_id or '-'}): "
        + ("passed" if result.reason is None else f"FAILED: {result.reason}")
    )
    return {"version": mv.version, "instances": len(instances), **result.to_dict()}


def deploy_canary(
    *, model_name: str, version: str, endpoint_name: str, canary_percent: int
) -> dict[str, Any]:
    from pipelines.components import deploy

    mv = get_version(model_name, version)
    assert mv is not None
    endpoint = _endpoint(endpoint_name, mv)
    previous, deployment = deploy.deploy_canary(endpoint, mv, canary_percent)
    print(
        f"deployed {mv.model_name} v{mv.version} to {deployment.endpoint}: traffic {dict(deployment.traffic)} "
        f"(before: {previous or 'nothing'})"
    )
    return {
        "version": mv.version,
        "endpoint": endpoint.name,
        "previous_traffic": previous,
        "traffic": dict(deployment.traffic),
    }


def canary_check(
    *, model_name: str, canary: Mapping[str, Any], smoke_test_uri: str, rows: int = 5
) -> dict[str, Any]:
    """The smoke-test instances through the real endpoint's new split (``deploy.canary_check``)."""
    from pipelines import backends
    from pipelines.components import deploy

    mv = get_version(model_name, canary["version"])
    assert mv is not None
    instances, meta = _smoke_instances(mv, smoke_test_uri, rows)
    reason = deploy.canary_check(backends.endpoint(canary["endpoint"]), instances, meta)
    print(f"canary check on {canary['endpoint']}: " + ("passed" if reason is None else f"FAILED: {reason}"))
    return {"passed": reason is None, "reason": reason or ""}


def finalize_deployment(
    *,
    model_name: str,
    canary: Mapping[str, Any],
    check: Mapping[str, Any],
    smoke: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Promote to 100% when the canary check passed; otherwise roll back, then fail with the reason."""
    from pipelines import backends
    from pipelines.components import deploy

    endpoint = backends.endpoint(canary["endpoint"])
    version = canary["version"]
    if check["passed"]:
        deployment = deploy.promote(endpoint, version)
        print(f"promoted v{version} to 100% of {deployment.endpoint}")
        summary = {
            "status": "promoted",
            "version": version,
            "endpoint": deployment.endpoint,
            "traffic": dict(deployment.traffic),
        }
        if smoke is not None:
            keys = ("endpoint", "deployed_model_id", "model_version_id", "instances")
            summary["smoke_test"] = {k: smoke[k] for k in keys if k in smoke}
        return summary
    deployment = deploy.rollback(endpoint, version, canary["previous_traffic"])
    raise CanaryFailed(
        f"rolled back v{version} of {model_name}: the canary failed: {check['reason']}; "
        f"traffic restored to {dict(deployment.traffic) or 'nothing'}"
    )


def refuse_failed_smoke_test(*, model_name: str, endpoint_name: str, smoke: Mapping[str, Any]) -> None:
    """A version whose smoke test failed never reaches the real endpoint: fail, naming why."""
    mv = get_version(model_name, smoke["version"])
    assert mv is not None
    endpoint = _endpoint(endpoint_name, mv)
    traffic = dict(endpoint.describe().traffic)
    raise SmokeTestFailed(
        f"v{smoke['version']} of {model_name} not deployed: smoke test failed: {smoke['reason']}; "
        f"endpoint {endpoint.name} unchanged (traffic {traffic or 'nothing'})"
    )
