"""evaluation: score a registered model version on a dataset and record its metrics."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh, inputs


@dsl.pipeline(name="evaluation")
def pipeline(
    model_name: str,
    version: str = "champion",
    data_uri: str = "",
    label_column: str = "",
    trigger: str = "",
) -> str:
    """Evaluate a model version on a dataset and record its metrics.

    Args:
        model_name: Registry name of the model (parent model).
        version: Model version id or alias.
        data_uri: Evaluation dataset URI(s) (empty: the version's own holdout).
        label_column: Name of the label column (empty: the model's).
        trigger: Identity of the event that started the run (lineage).
    """
    return fresh(c.evaluate_version(**inputs(locals(), drop=("trigger",)))).outputs["Output"]
