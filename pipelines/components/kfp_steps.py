"""Fine-grained components: one ``@dsl.component`` per training step, for pipelines that want
per-step caching on Vertex (``training_stepwise``) at about two minutes of start-up per task.
The built-in pipelines use ``kfp_components`` (one task per pipeline) instead.
"""

# No `from __future__ import annotations`: KFP reads the annotations as types.

from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from pipelines.components.kfp_components import component

# --- data ---------------------------------------------------------------------------------------


@component
def load_data(data_uri: str, dataset: Output[Dataset]) -> dict:
    from pipelines.components import steps

    return steps.load(data_uri, dataset.path)


@component
def validate_data(
    dataset: Input[Dataset],
    model_name: str,
    label_column: str,
    task: str,
    min_rows: int,
    report: Output[Artifact],
) -> dict:
    from pipelines.components import steps

    return steps.validate(
        dataset.path,
        model_name=model_name,
        label_column=label_column,
        task=task,
        min_rows=min_rows,
        report_path=report.path,
    )


@component
def split_data(
    dataset: Input[Dataset],
    label_column: str,
    task: str,
    test_fraction: float,
    seed: int,
    train: Output[Dataset],
    test: Output[Dataset],
) -> dict:
    from pipelines.components import steps

    return steps.split(
        dataset.path,
        label_column=label_column,
        task=task,
        test_fraction=test_fraction,
        seed=seed,
        train_path=train.path,
        test_path=test.path,
    )


# --- training -----------------------------------------------------------------------------------


@component
def train_model(
    train: Input[Dataset],
    test: Input[Dataset],
    label_column: str,
    task: str,
    model_family: str,
    hyperparameters: dict,
    seed: int,
    data_uri: str,
    model: Output[Model],
) -> dict:
    from pipelines.components import steps

    meta = steps.train(
        train.path,
        test.path,
        label_column=label_column,
        task=task,
        model_family=model_family,
        hyperparameters=hyperparameters,
        seed=seed,
        data_uri=data_uri,
        model_dir=model.path,
        model_uri=model.uri,
    )
    model.metadata.update(framework="scikit-learn", model_family=model_family, task=task)
    return {"features": len(meta["feature_names"]), "training_rows": meta["training_rows"]}


@component
def evaluate_model(model: Input[Model], test: Input[Dataset], metrics: Output[Metrics]) -> dict:
    from pipelines.components import steps

    scores = steps.evaluate(model.path, test.path)
    for name, value in scores.items():
        metrics.log_metric(name, value)
    return scores


@component
def compare_with_champion(
    model_name: str,
    test: Input[Dataset],
    metrics: dict,
    task: str,
    metric_floor: float,
    promotion_margin: float,
    primary_metric: str,
) -> dict:
    from pipelines.components import steps

    return steps.compare_with_champion(
        model_name=model_name,
        test_path=test.path,
        metrics=metrics,
        task=task,
        metric_floor=metric_floor,
        promotion_margin=promotion_margin,
        primary_metric=primary_metric,
    )


@component
def register_model(
    model: Input[Model],
    model_name: str,
    metrics: dict,
    decision: dict,
    data_uri: str,
    trigger: str,
    run_id: str,
    alert_id: str,
    promotion: str,
) -> str:
    import json

    from pipelines.components import steps

    summary = steps.register(
        promotion=promotion,
        model_name=model_name,
        model_uri=model.uri,
        metrics=metrics,
        decision=decision,
        data_uri=data_uri,
        trigger=trigger,
        run_id=run_id,
        alert_id=alert_id,
    )
    return json.dumps(summary, sort_keys=True)
