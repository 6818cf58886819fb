"""Pieces shared by the pipeline definitions."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from typing import Any

from kfp import dsl

from pipelines.components import kfp_components as c


def fresh(*tasks: Any) -> None:
    """No caching: the same data URI can hold new data, and registering/deploying is an effect."""
    for task in tasks:
        task.set_caching_options(False)


def train_and_register(
    *,
    data_uri: Any,
    model_name: Any,
    label_column: Any,
    task: Any,
    model_family: Any,
    hyperparameters: Any,
    test_fraction: Any,
    min_rows: Any,
    metric_floor: Any,
    promotion_margin: Any,
    seed: Any,
    trigger: Any,
    alert_id: Any,
) -> Any:
    """load -> validate -> split -> train -> evaluate -> compare with champion -> register."""
    load = c.load_data(data_uri=data_uri)
    validate = c.validate_data(
        dataset=load.outputs["dataset"],
        model_name=model_name,
        label_column=label_column,
        task=task,
        min_rows=min_rows,
    )
    split = c.split_data(
        dataset=load.outputs["dataset"],
        label_column=label_column,
        task=task,
        test_fraction=test_fraction,
        seed=seed,
    ).after(validate)
    train = c.train_model(
        train=split.outputs["train"],
        test=split.outputs["test"],
        label_column=label_column,
        task=task,
        model_family=model_family,
        hyperparameters=hyperparameters,
        seed=seed,
        data_uri=data_uri,
    )
    evaluate = c.evaluate_model(model=train.outputs["model"], test=split.outputs["test"])
    gate = c.compare_with_champion(
        model_name=model_name,
        test=split.outputs["test"],
        metrics=evaluate.outputs["Output"],
        task=task,
        metric_floor=metric_floor,
        promotion_margin=promotion_margin,
    )
    register = c.register_model(
        model=train.outputs["model"],
        model_name=model_name,
        metrics=evaluate.outputs["Output"],
        decision=gate.output,
        data_uri=data_uri,
        trigger=trigger,
        run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        alert_id=alert_id,
    )
    fresh(load, validate, split, train, evaluate, gate, register)
    return register
