"""The ``@dsl.component`` wrappers: a few lines each, the logic lives in ``steps``.

Every component runs on ``BASE_IMAGE``, an image with this project installed with its
``pipelines`` extra (see the Dockerfile); under kfp.local the current environment plays that part.
So there is no ``packages_to_install`` and no kfp install step (``install_kfp_package=False``): the
image has the versions of uv.lock, as a developer's environment does, and a local task starts in a
second.
Imports sit inside the functions because KFP ships each function's source on its own.
"""

# No `from __future__ import annotations`: KFP reads the annotations as types.

import functools
from typing import Final

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

# The components' image. `mlops-events compile --base-image` rewrites it in the compiled templates.
BASE_IMAGE: Final = "mlops-events/python-components:0.1.0"

component = functools.partial(dsl.component, base_image=BASE_IMAGE, install_kfp_package=False)


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


@component
def resolve_retraining_window(model_name: str, data_uri: str, reference_uri: str) -> str:
    from pipelines.components import steps

    return steps.retraining_window(model_name=model_name, data_uri=data_uri, reference_uri=reference_uri)


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
) -> dict:
    from pipelines.components import steps

    return steps.compare_with_champion(
        model_name=model_name,
        test_path=test.path,
        metrics=metrics,
        task=task,
        metric_floor=metric_floor,
        promotion_margin=promotion_margin,
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
) -> str:
    import json

    from pipelines.components import steps

    summary = steps.register(
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


@component
def evaluate_version(
    model_name: str, version: str, data_uri: str, label_column: str, metrics: Output[Metrics]
) -> str:
    import json

    from pipelines.components import steps

    summary = steps.evaluate_version(
        model_name=model_name, version=version, data_uri=data_uri, label_column=label_column
    )
    for name, value in summary["metrics"].items():
        metrics.log_metric(name, value)
    return json.dumps(summary, sort_keys=True)


# --- deployment ---------------------------------------------------------------------------------


@component
def deploy_canary(model_name: str, version: str, endpoint_name: str, canary_percent: int) -> dict:
    from pipelines.components import steps

    return steps.deploy_canary(
        model_name=model_name, version=version, endpoint_name=endpoint_name, canary_percent=canary_percent
    )


@component
def smoke_test(model_name: str, canary: dict, endpoint_name: str, smoke_test_uri: str) -> dict:
    from pipelines.components import steps

    return steps.smoke_test(
        model_name=model_name, canary=canary, endpoint_name=endpoint_name, smoke_test_uri=smoke_test_uri
    )


@component
def finalize_deployment(model_name: str, endpoint_name: str, canary: dict, smoke: dict) -> str:
    import json

    from pipelines.components import steps

    summary = steps.finalize_deployment(
        model_name=model_name, endpoint_name=endpoint_name, canary=canary, smoke=smoke
    )
    return json.dumps(summary, sort_keys=True)


# --- monitoring ---------------------------------------------------------------------------------


@component
def compute_drift(
    model_name: str,
    serving_uri: str,
    reference_uri: str,
    psi_threshold: float,
    report_json: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
) -> dict:
    from pipelines.components import steps

    report = steps.drift(
        model_name=model_name,
        serving_uri=serving_uri,
        reference_uri=reference_uri,
        psi_threshold=psi_threshold,
        json_path=report_json.path,
        html_path=report_html.path,
    )
    metrics.log_metric("max_psi", report["max_psi"])
    metrics.log_metric("drifted_features", len(report["drifted_features"]))
    return report


@component
def publish_drift_alert(report: dict, report_json: Input[Artifact], alerts_topic: str, trigger: str) -> str:
    import json

    from pipelines.components import steps

    summary = steps.publish_drift_alert(
        report=report, report_uri=report_json.uri, alerts_topic=alerts_topic, trigger=trigger
    )
    return json.dumps(summary, sort_keys=True)


# --- batch prediction ---------------------------------------------------------------------------


@component
def batch_predict(model_name: str, version: str, data_uri: str, output_uri: str) -> str:
    import json

    from pipelines.components import steps

    summary = steps.batch_predict(
        model_name=model_name, version=version, data_uri=data_uri, output_uri=output_uri
    )
    return json.dumps(summary, sort_keys=True)
