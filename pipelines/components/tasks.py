"""One function per Vertex task: each composes the plain steps of ``steps`` in one process.

On Vertex AI Pipelines every task is its own container with about two minutes of start-up, so a
pipeline has as few tasks as its lineage needs: training is one task that still writes every
artifact ML Metadata should show (dataset, validation report, model, metrics, comparison).
The steps stay small, typed and tested on their own; these functions only wire paths between them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pipelines.components import steps


@dataclass(frozen=True)
class TrainingOutputs:
    """Where the training task writes its artifacts (KFP output paths, or a test's directory)."""

    dataset: str  # the loaded data, as read (Parquet)
    report: str  # the validation report (JSON)
    model_dir: str  # model.joblib + metadata.json + reference and holdout samples
    model_uri: str  # the model artifact's URI (gs:// on Vertex, a path under kfp.local)
    comparison: str  # the champion/challenger decision (JSON)


@dataclass(frozen=True)
class TrainingSettings:
    """How a model is trained and judged; a model's ``models:`` settings fill these in the rules."""

    label_column: str = "target"
    task: str = "classification"
    model_family: str = "hist_gradient_boosting"
    hyperparameters: Mapping[str, Any] | None = None
    test_fraction: float = 0.25
    min_rows: int = 20
    metric_floor: float = 0.5
    promotion_margin: float = 0.0
    primary_metric: str = ""  # empty: the task's default (roc_auc, r2)
    promotion: str = "auto"  # auto: the gate moves champion; manual: a person does
    seed: int = 42


def train_and_register(
    *,
    data_uri: str,
    model_name: str,
    settings: TrainingSettings,
    outputs: TrainingOutputs,
    trigger: str,
    run_id: str,
    alert_id: str = "",
) -> dict[str, Any]:
    """load -> validate -> split -> train -> evaluate -> compare with the champion -> register."""
    s = settings
    steps.load(data_uri, outputs.dataset)
    steps.validate(
        outputs.dataset,
        model_name=model_name,
        label_column=s.label_column,
        task=s.task,
        min_rows=s.min_rows,
        report_path=outputs.report,
    )
    with tempfile.TemporaryDirectory(prefix="split-") as scratch:
        train_path, test_path = os.path.join(scratch, "train.parquet"), os.path.join(scratch, "test.parquet")
        steps.split(
            outputs.dataset,
            label_column=s.label_column,
            task=s.task,
            test_fraction=s.test_fraction,
            seed=s.seed,
            train_path=train_path,
            test_path=test_path,
        )
        steps.train(
            train_path,
            test_path,
            label_column=s.label_column,
            task=s.task,
            model_family=s.model_family,
            hyperparameters=dict(s.hyperparameters or {}),
            seed=s.seed,
            data_uri=data_uri,
            model_dir=outputs.model_dir,
            model_uri=outputs.model_uri,
        )
        metrics = steps.evaluate(outputs.model_dir, test_path)
        decision = steps.compare_with_champion(
            model_name=model_name,
            test_path=test_path,
            metrics=metrics,
            task=s.task,
            metric_floor=s.metric_floor,
            promotion_margin=s.promotion_margin,
            primary_metric=s.primary_metric,
        )
    with open(outputs.comparison, "w", encoding="utf-8") as fh:
        json.dump(decision, fh, indent=2, sort_keys=True)
    return steps.register(
        model_name=model_name,
        model_uri=outputs.model_uri,
        metrics=metrics,
        decision=decision,
        data_uri=data_uri,
        trigger=trigger,
        run_id=run_id,
        alert_id=alert_id,
        promotion=s.promotion,
    )


# Settings a retraining takes from the champion when they are not given ("" or {}).
INHERITED = ("label_column", "task", "model_family", "hyperparameters", "primary_metric")


def inherit_settings(settings: TrainingSettings, champion: Mapping[str, Any] | None) -> TrainingSettings:
    """``settings`` with every setting not given taken from the champion's metadata (what it
    was trained with), else the default. ``champion`` is the champion's ``metadata.json``."""
    defaults, recorded = TrainingSettings(), dict(champion or {})
    recorded.setdefault("primary_metric", (recorded.get("gate") or {}).get("metric", ""))
    changes = {}
    for name in INHERITED:
        if not getattr(settings, name):
            changes[name] = recorded.get(name) or getattr(defaults, name)
    return replace(settings, **changes)


def retrain_and_register(
    *,
    model_name: str,
    data_uri: str,
    reference_uri: str,
    settings: TrainingSettings,
    outputs: TrainingOutputs,
    trigger: str,
    run_id: str,
    alert_id: str,
) -> dict[str, Any]:
    """Training on a new window, with the champion's settings where none were given."""
    from pipelines.components import training

    window = steps.retraining_window(model_name=model_name, data_uri=data_uri, reference_uri=reference_uri)
    champion = steps.get_version(model_name, steps.CHAMPION, required=False)
    settings = inherit_settings(settings, training.load_metadata(champion.artifact_uri) if champion else None)
    print(
        f"settings: label {settings.label_column}, {settings.task}, {settings.model_family}"
        + (f" (from champion v{champion.version} where not given)" if champion else "")
    )
    return train_and_register(
        data_uri=window,
        model_name=model_name,
        settings=settings,
        outputs=outputs,
        trigger=trigger,
        run_id=run_id,
        alert_id=alert_id,
    )


def deploy(
    *, model_name: str, version: str, endpoint_name: str, canary_percent: int, smoke_test_uri: str
) -> dict[str, Any]:
    """Smoke test of the version alone on a short-lived endpoint; then the canary split on the
    real endpoint, checked through it; then promote to 100% or roll back (and fail with the reason).
    A version that fails its smoke test never reaches the real endpoint."""
    smoke = steps.smoke_test(
        model_name=model_name, version=version, endpoint_name=endpoint_name, smoke_test_uri=smoke_test_uri
    )
    if not smoke["passed"]:
        steps.refuse_failed_smoke_test(model_name=model_name, endpoint_name=endpoint_name, smoke=smoke)
    canary = steps.deploy_canary(
        model_name=model_name,
        version=smoke["version"],
        endpoint_name=endpoint_name,
        canary_percent=canary_percent,
    )
    check = steps.canary_check(model_name=model_name, canary=canary, smoke_test_uri=smoke_test_uri)
    return steps.finalize_deployment(model_name=model_name, canary=canary, check=check, smoke=smoke)


def monitor(
    *,
    model_name: str,
    serving_uri: str,
    reference_uri: str,
    psi_threshold: float,
    alerts_topic: str,
    trigger: str,
    report_json: str,
    report_html: str,
    report_uri: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The drift report, then the drift alert when a threshold is crossed. Returns both."""
    report = steps.drift(
        model_name=model_name,
        serving_uri=serving_uri,
        reference_uri=reference_uri,
        psi_threshold=psi_threshold,
        json_path=report_json,
        html_path=report_html,
    )
    alert = steps.publish_drift_alert(
        report=report, report_uri=report_uri, alerts_topic=alerts_topic, trigger=trigger
    )
    return report, alert
