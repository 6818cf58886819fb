"""monitoring: per-feature drift of serving data against the champion's training data; alert."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh


@dsl.pipeline(
    name="monitoring", description="Drift report of serving data vs the champion's data; alert on drift."
)
def pipeline(
    model_name: str,
    serving_uri: str = "",
    reference_uri: str = "",
    psi_threshold: float = 0.2,
    alerts_topic: str = "",
    trigger: str = "",
) -> str:
    drift = c.compute_drift(
        model_name=model_name,
        serving_uri=serving_uri,
        reference_uri=reference_uri,
        psi_threshold=psi_threshold,
    )
    alert = c.publish_drift_alert(
        report=drift.outputs["Output"],
        report_json=drift.outputs["report_json"],
        alerts_topic=alerts_topic,
        trigger=trigger,
    )
    fresh(drift, alert)
    return alert.output
