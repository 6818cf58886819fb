"""evaluation: score a registered model version on a dataset and record its metrics."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh


@dsl.pipeline(name="evaluation", description="Evaluate a model version on a dataset and record its metrics.")
def pipeline(
    model_name: str,
    version: str = "champion",
    data_uri: str = "",
    label_column: str = "",
    trigger: str = "",
) -> str:
    evaluate = c.evaluate_version(
        model_name=model_name, version=version, data_uri=data_uri, label_column=label_column
    )
    fresh(evaluate)
    return evaluate.outputs["Output"]
