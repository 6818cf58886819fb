"""batch_prediction: score a dataset with a model version and write the predictions beside it."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh, inputs


@dsl.pipeline(name="batch-prediction")
def pipeline(
    model_name: str,
    data_uri: str,
    version: str = "champion",
    output_uri: str = "",
    trigger: str = "",
) -> str:
    """Score a dataset with the champion; write predictions beside it.

    Args:
        model_name: Registry name of the model (parent model).
        data_uri: Dataset URI(s) to score.
        version: Model version id or alias.
        output_uri: Where to write predictions (empty: beside the input).
        trigger: Identity of the event that started the run (lineage).
    """
    return fresh(c.batch_predict(**inputs(locals(), drop=("trigger",)))).output
