"""monitoring: per-feature drift of serving data against the champion's training data; alert."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh, inputs


@dsl.pipeline(name="monitoring")
def pipeline(
    model_name: str,
    serving_uri: str = "",
    reference_uri: str = "",
    psi_threshold: float = 0.2,
    alerts_topic: str = "",
    trigger: str = "",
) -> str:
    """Drift report of serving data vs the champion's data; alert on drift.

    Args:
        model_name: Registry name of the model (parent model).
        serving_uri: Serving records URI(s) or folder(s) ending in / (empty: the model's own serving records).
        reference_uri: Reference data (empty: the champion's training data).
        psi_threshold: Population stability index above which a feature drifts. Range: 0..
        alerts_topic: Pub/Sub topic for drift alerts (empty: do not publish).
        trigger: Identity of the event that started the run (lineage).
    """
    return fresh(c.monitor_model(**inputs(locals()))).outputs["Output"]
