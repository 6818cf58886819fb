"""The ``@dsl.component`` wrappers of the built-in pipelines: one component per Vertex task.

On Vertex AI Pipelines each task is a container of its own (about two minutes of start-up), so
each built-in pipeline is one task; the logic lives in ``tasks`` (which composes the plain steps
of ``steps``). Fine-grained step components, for per-step caching, are in ``kfp_steps``.

Every component runs on ``BASE_IMAGE``, an image with this project and its locked dependencies
(see the Dockerfile); under kfp.local the current environment plays that part. So there is no
``packages_to_install`` and no kfp install step (``install_kfp_package=False``).
Imports sit inside the functions because KFP ships each function's source on its own.
"""

# No `from __future__ import annotations`: KFP reads the annotations as types.

import functools

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Metrics, Model, Output

# The components' image. `mlops-events compile --base-image` rewrites it in the compiled templates.
from pipelines.images import BASE_IMAGE

component = functools.partial(dsl.component, base_image=BASE_IMAGE, install_kfp_package=False)


@component
def train_and_register(
    data_uri: str,
    model_name: str,
    label_column: str,
    task: str,
    model_family: str,
    hyperparameters: dict,
    test_fraction: float,
    min_rows: int,
    metric_floor: float,
    promotion_margin: float,
    primary_metric: str,
    promotion: str,
    seed: int,
    trigger: str,
    run_id: str,
    alert_id: str,
    dataset: Output[Dataset],
    validation_report: Output[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    comparison: Output[Artifact],
) -> str:
    import json

    from pipelines.components import tasks

    settings = tasks.TrainingSettings(
        label_column, task, model_family, hyperparameters, test_fraction, min_rows, metric_floor,
        promotion_margin, primary_metric, promotion, seed,
    )  # fmt: skip
    out = tasks.TrainingOutputs(dataset.path, validation_report.path, model.path, model.uri, comparison.path)
    summary = tasks.train_and_register(
        data_uri=data_uri, model_name=model_name, settings=settings, outputs=out,
        trigger=trigger, run_id=run_id, alert_id=alert_id,
    )  # fmt: skip
    for name, value in summary["metrics"].items():
        metrics.log_metric(name, value)
    model.metadata.update(framework="scikit-learn", model_family=model_family, version=summary["version"])
    return json.dumps(summary, sort_keys=True)


@component
def retrain_and_register(
    model_name: str,
    data_uri: str,
    reference_uri: str,
    alert_id: str,
    label_column: str,
    task: str,
    model_family: str,
    hyperparameters: dict,
    test_fraction: float,
    min_rows: int,
    metric_floor: float,
    promotion_margin: float,
    primary_metric: str,
    promotion: str,
    seed: int,
    trigger: str,
    run_id: str,
    dataset: Output[Dataset],
    validation_report: Output[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    comparison: Output[Artifact],
) -> str:
    import json

    from pipelines.components import tasks

    settings = tasks.TrainingSettings(
        label_column, task, model_family, hyperparameters, test_fraction, min_rows, metric_floor,
        promotion_margin, primary_metric, promotion, seed,
    )  # fmt: skip
    out = tasks.TrainingOutputs(dataset.path, validation_report.path, model.path, model.uri, comparison.path)
    summary = tasks.retrain_and_register(
        model_name=model_name, data_uri=data_uri, reference_uri=reference_uri, settings=settings,
        outputs=out, trigger=trigger, run_id=run_id, alert_id=alert_id,
    )  # fmt: skip
    for name, value in summary["metrics"].items():
        metrics.log_metric(name, value)
    model.metadata.update(framework="scikit-learn", version=summary["version"])
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


@component
def deploy_model(
    model_name: str, version: str, endpoint_name: str, canary_percent: int, smoke_test_uri: str
) -> str:
    import json

    from pipelines.components import tasks

    summary = tasks.deploy(
        model_name=model_name, version=version, endpoint_name=endpoint_name,
        canary_percent=canary_percent, smoke_test_uri=smoke_test_uri,
    )  # fmt: skip
    return json.dumps(summary, sort_keys=True)


@component
def monitor_model(
    model_name: str,
    serving_uri: str,
    reference_uri: str,
    psi_threshold: float,
    alerts_topic: str,
    trigger: str,
    report_json: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
) -> str:
    import json

    from pipelines.components import tasks

    report, alert = tasks.monitor(
        model_name=model_name, serving_uri=serving_uri, reference_uri=reference_uri,
        psi_threshold=psi_threshold, alerts_topic=alerts_topic, trigger=trigger,
        report_json=report_json.path, report_html=report_html.path, report_uri=report_json.uri,
    )  # fmt: skip
    metrics.log_metric("max_psi", report["max_psi"])
    metrics.log_metric("drifted_features", len(report["drifted_features"]))
    return json.dumps(alert, sort_keys=True)


@component
def batch_predict(model_name: str, version: str, data_uri: str, output_uri: str) -> str:
    import json

    from pipelines.components import steps

    summary = steps.batch_predict(
        model_name=model_name, version=version, data_uri=data_uri, output_uri=output_uri
    )
    return json.dumps(summary, sort_keys=True)
