"""deployment: canary-deploy a version, smoke-test it, then promote to 100% or roll back."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh


@dsl.pipeline(name="deployment", description="Deploy with a canary split, smoke-test, promote or roll back.")
def pipeline(
    model_name: str,
    version: str = "champion",
    endpoint_name: str = "",
    canary_percent: int = 10,
    smoke_test_uri: str = "",
    trigger: str = "",
) -> str:
    canary = c.deploy_canary(
        model_name=model_name, version=version, endpoint_name=endpoint_name, canary_percent=canary_percent
    )
    smoke = c.smoke_test(
        model_name=model_name,
        canary=canary.output,
        endpoint_name=endpoint_name,
        smoke_test_uri=smoke_test_uri,
    )
    final = c.finalize_deployment(
        model_name=model_name, endpoint_name=endpoint_name, canary=canary.output, smoke=smoke.output
    )
    fresh(canary, smoke, final)
    return final.output
