"""training_stepwise: the training steps as one Vertex task each, for per-step caching.

The same steps as ``training`` (which runs them in one task): each task costs a container start on
Vertex (about two minutes), so this chain of seven takes ~14 minutes of start-up; use it when
caching individual steps (e.g. an expensive load) is worth that.
"""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_steps as s
from pipelines.definitions.common import fresh


@dsl.pipeline(name="training-stepwise")
def pipeline(
    data_uri: str,
    model_name: str,
    label_column: str = "target",
    task: str = "classification",
    model_family: str = "hist_gradient_boosting",
    hyperparameters: dict = {},  # noqa: B006 (a KFP default, never mutated)
    test_fraction: float = 0.25,
    min_rows: int = 20,
    metric_floor: float = 0.5,
    promotion_margin: float = 0.0,
    primary_metric: str = "",
    promotion: str = "auto",
    seed: int = 42,
    trigger: str = "",
) -> str:
    """Training, one task per step: load, validate, split, train, evaluate, compare, register.

    Args:
        data_uri: Dataset URI(s), comma-separated: gs://... or a local path (CSV, JSONL, Parquet); a URI ending in / is a folder.
        model_name: Registry name of the model (parent model).
        label_column: Name of the label column.
        task: What the model predicts. One of: classification, regression.
        model_family: Estimator family. One of: hist_gradient_boosting, gradient_boosting, random_forest, logistic_regression, linear_regression.
        hyperparameters: Estimator keyword arguments.
        test_fraction: Holdout fraction. Range: 0.01..0.9.
        min_rows: Fewest rows accepted by validation. Range: 1..
        metric_floor: Absolute floor of the primary metric.
        promotion_margin: How much the challenger must beat the champion by. Range: 0..
        primary_metric: Metric the gate compares (empty: the task's default). One of: roc_auc, accuracy, f1, r2.
        promotion: Who moves champion when the gate passes. One of: auto, manual.
        seed: Random seed.
        trigger: Identity of the event that started the run (lineage).
    """
    load = s.load_data(data_uri=data_uri)
    data = load.outputs["dataset"]
    validate = s.validate_data(
        dataset=data, model_name=model_name, label_column=label_column, task=task, min_rows=min_rows
    )
    split = s.split_data(
        dataset=data, label_column=label_column, task=task, test_fraction=test_fraction, seed=seed
    ).after(validate)
    train = s.train_model(
        train=split.outputs["train"], test=split.outputs["test"], label_column=label_column, task=task,
        model_family=model_family, hyperparameters=hyperparameters, seed=seed, data_uri=data_uri,
    )  # fmt: skip
    evaluate = s.evaluate_model(model=train.outputs["model"], test=split.outputs["test"])
    gate = s.compare_with_champion(
        model_name=model_name, test=split.outputs["test"], metrics=evaluate.outputs["Output"], task=task,
        metric_floor=metric_floor, promotion_margin=promotion_margin, primary_metric=primary_metric,
    )  # fmt: skip
    register = s.register_model(
        model=train.outputs["model"], model_name=model_name, metrics=evaluate.outputs["Output"],
        decision=gate.output, data_uri=data_uri, trigger=trigger,
        run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, alert_id="", promotion=promotion,
    )  # fmt: skip
    # The pure steps may be cached (their inputs name their data: give immutable data URIs);
    # comparing and registering read and change the registry, so they always run.
    fresh(gate, register)
    return register.output
