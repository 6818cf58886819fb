"""retraining: training on a new data window (newest data plus a reference), named after its alert."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh, train_and_register


@dsl.pipeline(name="retraining", description="Retrain on the newest data plus a reference window.")
def pipeline(
    model_name: str,
    data_uri: str = "",
    reference_uri: str = "",
    alert_id: str = "",
    label_column: str = "target",
    task: str = "classification",
    model_family: str = "gradient_boosting",
    hyperparameters: dict = {},  # noqa: B006 (a KFP default, never mutated)
    test_fraction: float = 0.25,
    min_rows: int = 20,
    metric_floor: float = 0.5,
    promotion_margin: float = 0.0,
    seed: int = 42,
    trigger: str = "",
) -> str:
    window = c.resolve_retraining_window(
        model_name=model_name, data_uri=data_uri, reference_uri=reference_uri
    )
    fresh(window)
    register = train_and_register(
        data_uri=window.output,
        model_name=model_name,
        label_column=label_column,
        task=task,
        model_family=model_family,
        hyperparameters=hyperparameters,
        test_fraction=test_fraction,
        min_rows=min_rows,
        metric_floor=metric_floor,
        promotion_margin=promotion_margin,
        seed=seed,
        trigger=trigger,
        alert_id=alert_id,
    )
    return register.output
