"""deployment: smoke-test a version alone, canary-deploy it, then promote to 100% or roll back."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh, inputs


@dsl.pipeline(name="deployment")
def pipeline(
    model_name: str,
    version: str = "champion",
    endpoint_name: str = "",
    canary_percent: int = 10,
    smoke_test_uri: str = "",
    trigger: str = "",
) -> str:
    """Smoke-test the version alone on a short-lived endpoint, then canary, promote or roll back.

    Args:
        model_name: Registry name of the model (parent model): its id, numeric id or display name.
        version: Model version to deploy (default: whichever holds champion).
        endpoint_name: Endpoint display name (empty: the model's display name).
        canary_percent: Traffic share of the new version while it is a canary, in percent. Range: 1..50.
        smoke_test_uri: Instances for smoke-test predictions (empty: a sample of the training data).
        trigger: Identity of the event that started the run (lineage).
    """
    return fresh(c.deploy_model(**inputs(locals(), drop=("trigger",)))).output
