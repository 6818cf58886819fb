"""training: validate data, train, evaluate, compare with the champion, register (and promote)."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.definitions.common import train_and_register


@dsl.pipeline(
    name="training", description="Validate data, train, evaluate, compare with the champion, register."
)
def pipeline(
    data_uri: str,
    model_name: str,
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
    register = train_and_register(
        data_uri=data_uri,
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
        alert_id="",
    )
    return register.output
