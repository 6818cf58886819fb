"""retraining: training on a new data window, with the champion's settings, named after its alert."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from kfp import dsl

from pipelines.components import kfp_components as c
from pipelines.definitions.common import fresh, inputs, on_machine


@dsl.pipeline(name="retraining")
def pipeline(
    model_name: str,
    data_uri: str = "",
    reference_uri: str = "",
    alert_id: str = "",
    label_column: str = "",
    task: str = "",
    model_family: str = "",
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
    """Retrain on the newest data plus a reference window, with the champion's settings.

    Args:
        model_name: Registry name of the model (parent model).
        data_uri: Newest data URI(s); empty: the files now in the champion's data folders that hold its feature and label columns.
        reference_uri: Reference data URI(s); empty: the champion's training data.
        alert_id: The alert that caused this run (recorded as a label of the new version).
        label_column: Name of the label column (empty: the champion's).
        task: What the model predicts (empty: the champion's).
        model_family: Estimator family (empty: the champion's).
        hyperparameters: Estimator keyword arguments (empty: the champion's).
        test_fraction: Holdout fraction. Range: 0.01..0.9.
        min_rows: Fewest rows accepted by validation. Range: 1..
        metric_floor: Absolute floor of the primary metric.
        promotion_margin: How much the challenger must beat the champion by. Range: 0..
        primary_metric: Metric the gate compares (empty: the champion's, else the task's default).
        promotion: Who moves champion when the gate passes. One of: auto, manual.
        seed: Random seed.
        machine_cpu: vCPUs of the training task's machine on Vertex (e.g. 4, 8, 16).
        machine_memory: Memory of the training task's machine on Vertex (e.g. 16G, 64G).
        trigger: Identity of the event that started the run (lineage).
    """
    args = inputs(locals(), drop=("machine_cpu", "machine_memory"))
    train = fresh(c.retrain_and_register(**args, run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER))
    on_machine(train, machine_cpu, machine_memory)
    return train.outputs["Output"]
