"""batch_prediction: score a dataset with a model version and write the predictions beside it."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh


@dsl.pipeline(
    name="batch-prediction", description="Score a dataset with the champion; write predictions beside it."
)
def pipeline(
    model_name: str,
    data_uri: str,
    version: str = "champion",
    output_uri: str = "",
    trigger: str = "",
) -> str:
    predict = c.batch_predict(
        model_name=model_name, version=version, data_uri=data_uri, output_uri=output_uri
    )
    fresh(predict)
    return predict.output
