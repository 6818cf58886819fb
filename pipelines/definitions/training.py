"""training: validate data, train, evaluate, compare with the champion, register (and promote)."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh, inputs, on_machine


@dsl.pipeline(name="training")
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
    machine_cpu: str = "4",
    machine_memory: str = "16G",
    trigger: str = "",
) -> str:
    """Validate data, train, evaluate, compare with the champion, register (and promote).

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
        primary_metric: Metric the gate compares (empty: roc_auc for classification, r2 for regression). One of: roc_auc, accuracy, f1, r2.
        promotion: Who moves champion when the gate passes. One of: auto, manual.
        seed: Random seed.
        machine_cpu: vCPUs of the training task's machine on Vertex (e.g. 4, 8, 16).
        machine_memory: Memory of the training task's machine on Vertex (e.g. 16G, 64G).
        trigger: Identity of the event that started the run (lineage).
    """
    args = inputs(locals(), drop=("machine_cpu", "machine_memory"))
    train = fresh(c.train_and_register(**args, run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, alert_id=""))
    on_machine(train, machine_cpu, machine_memory)
    return train.outputs["Output"]
