"""One function per pipeline step: the body of each ``@dsl.component`` wrapper.

They take plain values and local paths (the KFP artifacts' ``.path``), reach the registry,
endpoints and alerts through ``pipelines.backends`` (Vertex AI, or the emulator that the API
endpoint names), print a readable line or report for the task log, and return JSON-able dicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipelines.components import data as data_mod
from pipelines.components.errors import (
    CanaryFailed,
    ComponentError,
    DataValidationError,
    ModelNotFoundError,
    SmokeTestFailed,
)
from pipelines.ports import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
# Monitoring's default serving data: the serving container's records of the last N UTC days.
SERVING_RECORDS_ENV = "MLOPS_SERVING_RECORDS_URI"
SERVING_WINDOW_DAYS = 7


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def label_value(value: str) -> str:
    """A Vertex label value: lowercase letters, digits, ``_`` and ``-``, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


def _registry() -> Any:
    from pipelines import backends

    return backends.model_registry()


def get_version(model_name: str, version_or_alias: str, *, required: bool = True) -> ModelVersion | None:
    found: ModelVersion | None = _registry().get(model_name, version_or_alias)
    if found is None and required:
        raise ModelNotFoundError(
            f"model {model_name!r} has no version or alias {version_or_alias!r} in the registry"
        )
    return found


# --- data ---------------------------------------------------------------------------------------


def load(data_uri: str, out_path: str) -> dict[str, Any]:
    frame = data_mod.load_dataset(data_uri)
    data_mod.write_frame(frame, out_path)
    print(f"loaded {len(frame)} rows x {frame.shape[1]} columns from {data_uri}")
    return {"rows": len(frame), "columns": [str(c) for c in frame.columns], "data_uri": data_uri}


def validate(
    dataset_path: str, *, model_name: str, label_column: str, task: str, min_rows: int, report_path: str
) -> dict[str, Any]:
    from pipelines.components import training, validation

    frame = data_mod.read_frame(dataset_path)
    reference_schema = None
    champion = get_version(model_name, CHAMPION, required=False)
    if champion is not None:
        reference_schema = training.load_metadata(champion.artifact_uri).get("schema")
    report = validation.validate(
        frame, label_column=label_column, task=task, min_rows=min_rows, reference_schema=reference_schema
    )
    if champion is not None:
        report.warnings.append(f"schema compared with champion v{champion.version}")
    with open(report_path, "w", encoding="utf-8") as fh:
        json.dump(report.to_dict(), fh, indent=2)
    text = report.render()
    print(text)
    if not report.ok:
        raise DataValidationError(text)
    return report.to_dict()


def split(
    dataset_path: str,
    *,
    label_column: str,
    task: str,
    test_fraction: float,
    seed: int,
    train_path: str,
    test_path: str,
) -> dict[str, int]:
    from pipelines.components import training

    train, test = training.split(
        data_mod.read_frame(dataset_path),
        label_column=label_column,
        task=task,
        test_fraction=test_fraction,
        seed=seed,
    )
    data_mod.write_frame(train, train_path)
    data_mod.write_frame(test, test_path)
    print(f"split: {len(train)} training rows, {len(test)} holdout rows")
    return {"train_rows": len(train), "test_rows": len(test)}


# --- training -----------------------------------------------------------------------------------


def train(
    train_path: str,
    test_path: str,
    *,
    label_column: str,
    task: str,
    model_family: str,
    hyperparameters: Mapping[str, Any],
    seed: int,
    data_uri: str,
    model_dir: str,
    model_uri: str,
) -> dict[str, Any]:
    import shutil

    from pipelines.components import training, validation

    train_frame = data_mod.read_frame(train_path)
    estimator, features = training.fit(
        train_frame,
        label_column=label_column,
        task=task,
        model_family=model_family,
        hyperparameters=hyperparameters,
        seed=seed,
    )
    os.makedirs(model_dir, exist_ok=True)
    sample = train_frame.sample(min(len(train_frame), training.REFERENCE_ROWS), random_state=seed)
    data_mod.write_frame(sample, os.path.join(model_dir, training.REFERENCE_FILE))
    shutil.copyfile(test_path, os.path.join(model_dir, training.HOLDOUT_FILE))
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(estimator, "classes_", [])]
    metadata = {
        "feature_names": features,
        "task": task,
        "label_column": label_column,
        "model_family": model_family,
        "hyperparameters": dict(hyperparameters),
        "metrics": {},
        "data_uris": data_mod.split_uris(data_uri),
        # Relative to the model folder: the registry may stage the folder elsewhere (a local
        # folder under kfp.local is copied to Cloud Storage at upload).
        "reference_uri": training.REFERENCE_FILE,
        "holdout_uri": training.HOLDOUT_FILE,
        "schema": validation.infer_schema(train_frame),
        "classes": classes,
        "training_rows": len(train_frame),
        "trained_at": _now(),
    }
    training.save_model(model_dir, estimator, metadata)
    print(f"trained {model_family} ({task}) on {len(train_frame)} rows, {len(features)} features")
    return metadata


def evaluate(model_dir: str, test_path: str) -> dict[str, float]:
    from pipelines.components import evaluation, training

    estimator, metadata = training.load_model(model_dir)
    metrics = evaluation.score(
        estimator,
        data_mod.read_frame(test_path),
        label_column=metadata["label_column"],
        task=metadata["task"],
        feature_names=metadata["feature_names"],
    )
    print("holdout metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return metrics


def compare_with_champion(
    *,
    model_name: str,
    test_path: str,
    metrics: Mapping[str, float],
    task: str,
    metric_floor: float,
    promotion_margin: float,
    primary_metric: str = "",
) -> dict[str, Any]:
    """Score the current champion on the challenger's holdout and decide."""
    from pipelines.components import evaluation, gate, training

    metric = evaluation.primary_metric(task, dict(metrics), primary_metric)
    champion = get_version(model_name, CHAMPION, required=False)
    champion_score = None
    if champion is not None:
        estimator, meta = training.load_model(champion.artifact_uri)
        holdout = data_mod.read_frame(test_path)
        champ_metrics = evaluation.score(
            estimator,
            holdout,
            label_column=meta["label_column"],
            task=meta["task"],
            feature_names=meta["feature_names"],
        )
        champion_score = champ_metrics.get(metric)
        print(
            f"champion v{champion.version} on the same holdout: "
            + ", ".join(f"{k}={v:.4f}" for k, v in champ_metrics.items())
        )
    decision = gate.decide(
        metric=metric,
        challenger=float(metrics[metric]),
        champion=champion_score,
        champion_version=champion.version if champion else None,
        floor=metric_floor,
        margin=promotion_margin,
    )
    print(("PROMOTE: " if decision.promote else "KEEP CHAMPION: ") + "; ".join(decision.reasons))
    return decision.to_dict()


def register(
    *,
    model_name: str,
    model_uri: str,
    metrics: Mapping[str, float],
    decision: Mapping[str, Any],
    data_uri: str,
    trigger: str,
    run_id: str,
    alert_id: str = "",
    promotion: str = "auto",
) -> dict[str, Any]:
    """Register the version (alias ``challenger``); if the gate said so and promotion is ``auto``,
    move ``champion`` to it. With ``manual`` promotion the version waits as ``challenger`` with its
    comparison recorded, until a person moves ``champion`` (console or ``mlops-events promote``)."""
    if promotion not in ("auto", "manual"):
        raise ComponentError(f"promotion must be 'auto' or 'manual', got {promotion!r}")
    from pipelines import storage_io
    from pipelines.components import training

    meta_uri = training.join_uri(model_uri, training.METADATA_FILE)
    metadata = json.loads(storage_io.read_text(meta_uri))
    metadata["metrics"] = dict(metrics)
    metadata["gate"] = dict(decision)
    metadata["promotion"] = promotion
    storage_io.write_text(meta_uri, json.dumps(metadata, indent=2, sort_keys=True, default=str))
    labels = {
        "trigger": label_value(_digest(trigger)[:16]) if trigger else "manual",
        "run_id": label_value(run_id),
        "data_digest": _digest(data_uri)[:16],
        "model_family": label_value(metadata["model_family"]),
        **{f"metric_{k}": label_value(f"{v:.4f}".replace(".", "_")) for k, v in metrics.items()},
    }
    if alert_id:
        labels["alert_id"] = label_value(alert_id)
    registry = _registry()
    version = registry.register(
        model_name,
        model_uri,
        labels=labels,
        metrics=dict(metrics),
        aliases=[CHALLENGER],
        description=f"data: {data_uri}; trigger: {trigger or 'manual'}"
        + (f"; alert: {alert_id}" if alert_id else ""),
    )
    promoted = bool(decision["promote"]) and promotion == "auto"
    if promoted:
        version = registry.set_alias(model_name, version.version, CHAMPION)
    reasons = list(decision["reasons"])
    if promotion == "manual":
        verdict = "would pass" if decision["promote"] else "does not pass"
        reasons.append(f"promotion is manual: the gate {verdict}; awaiting approval (mlops-events promote)")
    summary = {
        "model_name": model_name,
        "version": version.version,
        "aliases": list(version.aliases),
        "promoted": promoted,
        "promotion": promotion,
        "reasons": reasons,
        "metrics": dict(metrics),
        "artifact_uri": model_uri,
    }
    if alert_id:
        summary["alert_id"] = alert_id
    print(f"registered {model_name} v{version.version} with aliases {', '.join(version.aliases)}")
    return summary


def retraining_window(*, model_name: str, data_uri: str, reference_uri: str) -> str:
    """The data of a retraining run: the newest data plus a reference window.

    Empty ``data_uri``: the dataset files now in the folders the champion was trained from that
    are this model's data (they hold its feature and label columns); other files there are left
    out and listed, never merged silently. Empty ``reference_uri``: the champion's training data.
    """
    from pipelines.components import training

    given = data_mod.split_uris(data_uri) + data_mod.split_uris(reference_uri)
    found: list[str] = []
    for uri in given:
        found += data_mod.expand(uri)
    if not data_uri or not reference_uri:
        champion = get_version(model_name, CHAMPION, required=False)
        if champion is None:
            if not given:
                raise ComponentError(f"model {model_name!r} has no champion: give data_uri for retraining")
        else:
            meta = training.load_metadata(champion.artifact_uri)
            trained_on = list(meta.get("data_uris", []))
            if not reference_uri:
                found += trained_on
            if not data_uri:
                needed = [*meta.get("feature_names", []), meta.get("label_column", "")]
                found += _own_data(trained_on, [c for c in needed if c], exclude=set(found))
    window = list(dict.fromkeys(found))  # keep order, drop repeats
    if not window:
        raise ComponentError(f"no data found for retraining {model_name!r}")
    print("retraining window:\n" + "\n".join(f"  {u}" for u in window))
    return ",".join(window)


def _own_data(trained_on: list[str], columns: list[str], *, exclude: set[str]) -> list[str]:
    """Files in the folders of ``trained_on`` that hold every one of ``columns``."""
    folders = list(dict.fromkeys(u.rsplit("/", 1)[0] + "/" for u in trained_on if "/" in u))
    kept: list[str] = []
    for folder in folders:
        for uri in data_mod.expand(folder):
            if uri in exclude:
                continue
            missing = [c for c in columns if c not in data_mod.columns_of(uri)]
            if missing:
                print(f"  left out {uri}: not this model's data (lacks {', '.join(missing[:5])})")
            else:
                kept.append(uri)
    return kept


# --- evaluation of a registered version ------------------------------------------------------------


def evaluate_version(*, model_name: str, version: str, data_uri: str, label_column: str) -> dict[str, Any]:
    from pipelines.components import evaluation, training

    mv = get_version(model_name, version)
    assert mv is not None
    estimator, meta = training.load_model(mv.artifact_uri)
    if data_uri:
        frame = data_mod.load_dataset(data_uri)
    else:
        holdout = meta.get("holdout_uri")
        if not holdout:
            raise ComponentError(f"{model_name} v{mv.version} records no holdout: give data_uri")
        frame = data_mod.read_table(training.resolve_uri(holdout, mv.artifact_uri))
    label = label_column or meta["label_column"]
    if label not in frame.columns:
        raise ComponentError(f"evaluation data lacks the label column {label!r}")
    metrics = evaluation.score(
        estimator, frame, label_column=label, task=meta["task"], feature_names=meta["feature_names"]
    )
    print(
        f"{model_name} v{mv.version} on {data_uri or 'its holdout'} ({len(frame)} rows): "
        + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    )
    return {"model_name": model_name, "version": mv.version, "rows": len(frame), "metrics": metrics}


# --- deployment ---------------------------------------------------------------------------------


def _endpoint(endpoint_name: str, model: ModelVersion) -> Any:
    """The endpoint named ``endpoint_name``, else the model's own (named by its display name,
    which is its id for the models this project registers)."""
    from pipelines import backends

    return backends.endpoint(endpoint_name or model.display_name or model.model_name)


def _smoke_instances(model: ModelVersion, smoke_test_uri: str, rows: int) -> tuple[list[Any], dict[str, Any]]:
    """Objects ``{feature: value}`` for a smoke test (the model's feature columns of the file, or
    of the version's reference sample), and the version's metadata. A label column or any other
    column is not sent; a missing feature is left for the serving container to name."""
    from pipelines.components import training

    meta = training.load_metadata(model.artifact_uri)
    if smoke_test_uri:
        frame = data_mod.load_dataset(smoke_test_uri)
    else:
        frame = data_mod.read_table(training.resolve_uri(meta["reference_uri"], model.artifact_uri))
    records = json.loads(frame.head(rows).to_json(orient="records"))
    features = list(meta["feature_names"])
    instances = [{f: record[f] for f in features if f in record} for record in records]
    return instances, meta


def smoke_test(
    *, model_name: str, version: str, endpoint_name: str, smoke_test_uri: str, rows: int = 5
) -> dict[str, Any]:
    """The version alone on a short-lived smoke-test endpoint (``deploy.smoke_test``)."""
    from pipelines.components import deploy

    mv = get_version(model_name, version)
    assert mv is not None
    instances, meta = _smoke_instances(mv, smoke_test_uri, rows)
    result = deploy.smoke_test(_endpoint(endpoint_name, mv), mv, instances, meta)
    print(
        f"smoke test of {mv.model_name} v{mv.version} alone on {result.endpoint or 'a smoke-test endpoint'} "
        f"({len(instances)} instances, answered by deployed model {result.deployed_model_id or '-'}, "
        f"version {result.model_version_id or '-'}): "
        + ("passed" if result.reason is None else f"FAILED: {result.reason}")
    )
    return {"version": mv.version, "instances": len(instances), **result.to_dict()}


def deploy_canary(
    *, model_name: str, version: str, endpoint_name: str, canary_percent: int
) -> dict[str, Any]:
    from pipelines.components import deploy

    mv = get_version(model_name, version)
    assert mv is not None
    endpoint = _endpoint(endpoint_name, mv)
    previous, deployment = deploy.deploy_canary(endpoint, mv, canary_percent)
    print(
        f"deployed {mv.model_name} v{mv.version} to {deployment.endpoint}: traffic {dict(deployment.traffic)} "
        f"(before: {previous or 'nothing'})"
    )
    return {
        "version": mv.version,
        "endpoint": endpoint.name,
        "previous_traffic": previous,
        "traffic": dict(deployment.traffic),
    }


def canary_check(
    *, model_name: str, canary: Mapping[str, Any], smoke_test_uri: str, rows: int = 5
) -> dict[str, Any]:
    """The smoke-test instances through the real endpoint's new split (``deploy.canary_check``)."""
    from pipelines import backends
    from pipelines.components import deploy

    mv = get_version(model_name, canary["version"])
    assert mv is not None
    instances, meta = _smoke_instances(mv, smoke_test_uri, rows)
    reason = deploy.canary_check(backends.endpoint(canary["endpoint"]), instances, meta)
    print(f"canary check on {canary['endpoint']}: " + ("passed" if reason is None else f"FAILED: {reason}"))
    return {"passed": reason is None, "reason": reason or ""}


def finalize_deployment(
    *,
    model_name: str,
    canary: Mapping[str, Any],
    check: Mapping[str, Any],
    smoke: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Promote to 100% when the canary check passed; otherwise roll back, then fail with the reason."""
    from pipelines import backends
    from pipelines.components import deploy

    endpoint = backends.endpoint(canary["endpoint"])
    version = canary["version"]
    if check["passed"]:
        deployment = deploy.promote(endpoint, version)
        print(f"promoted v{version} to 100% of {deployment.endpoint}")
        summary = {
            "status": "promoted",
            "version": version,
            "endpoint": deployment.endpoint,
            "traffic": dict(deployment.traffic),
        }
        if smoke is not None:
            keys = ("endpoint", "deployed_model_id", "model_version_id", "instances")
            summary["smoke_test"] = {k: smoke[k] for k in keys if k in smoke}
        return summary
    deployment = deploy.rollback(endpoint, version, canary["previous_traffic"])
    raise CanaryFailed(
        f"rolled back v{version} of {model_name}: the canary failed: {check['reason']}; "
        f"traffic restored to {dict(deployment.traffic) or 'nothing'}"
    )


def refuse_failed_smoke_test(*, model_name: str, endpoint_name: str, smoke: Mapping[str, Any]) -> None:
    """A version whose smoke test failed never reaches the real endpoint: fail, naming why."""
    mv = get_version(model_name, smoke["version"])
    assert mv is not None
    endpoint = _endpoint(endpoint_name, mv)
    traffic = dict(endpoint.describe().traffic)
    raise SmokeTestFailed(
        f"v{smoke['version']} of {model_name} not deployed: smoke test failed: {smoke['reason']}; "
        f"endpoint {endpoint.name} unchanged (traffic {traffic or 'nothing'})"
    )


# --- monitoring ---------------------------------------------------------------------------------


def drift(
    *,
    model_name: str,
    serving_uri: str,
    reference_uri: str,
    psi_threshold: float,
    json_path: str,
    html_path: str,
    window_days: int = SERVING_WINDOW_DAYS,
) -> dict[str, Any]:
    """Drift of serving inputs against the champion's reference sample.

    Empty ``serving_uri``: the serving records of ``model_name`` under
    ``MLOPS_SERVING_RECORDS_URI`` for the last ``window_days`` UTC days, today included
    (``_default_serving_uri``).
    """
    from pipelines.components import drift as drift_mod
    from pipelines.components import predict, training

    champion = get_version(model_name, CHAMPION)
    assert champion is not None
    meta = training.load_metadata(champion.artifact_uri)
    serving_uri = serving_uri or _default_serving_uri(champion.model_name, window_days)
    current = predict.load_serving(serving_uri)
    if reference_uri:
        reference = data_mod.load_dataset(reference_uri)
    else:
        reference = data_mod.read_table(training.resolve_uri(meta["reference_uri"], champion.artifact_uri))
    report = drift_mod.feature_drift(reference, current, list(meta["feature_names"]), psi_threshold)
    report.update(
        model_name=model_name,
        champion_version=champion.version,
        serving_uri=serving_uri,
        reference_uri=reference_uri or training.resolve_uri(meta["reference_uri"], champion.artifact_uri),
        window=_window(current),
    )
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    with open(html_path, "w", encoding="utf-8") as fh:
        fh.write(drift_mod.render_html(report, f"Drift report: {model_name} v{champion.version}"))
    for f in report["features"]:
        print(f"  {f['feature']:<30} psi={f['psi']:.4f}" + ("  DRIFT" if f["drifted"] else ""))
    print(
        f"drift: {report['drift']} ({len(report['drifted_features'])} of {len(report['features'])} features over {psi_threshold})"
    )
    return report


def _default_serving_uri(model_name: str, window_days: int = SERVING_WINDOW_DAYS) -> str:
    """The day folders of the serving container's records of ``model_name`` that hold records,
    for the last ``window_days`` UTC days (``pipelines.serving.records`` layout), comma-separated.

    Without ``MLOPS_SERVING_RECORDS_URI`` an empty ``serving_uri`` is an error naming it.
    """
    from datetime import timedelta

    from pipelines import storage_io
    from pipelines.serving.records import day_prefixes, model_prefix

    root = os.environ.get(SERVING_RECORDS_ENV, "").strip()
    if not root:
        raise ComponentError(
            f"serving_uri is empty and {SERVING_RECORDS_ENV} is not set: name the serving records "
            "to compare (JSONL files or folders ending in /), or set where the serving container writes them"
        )
    today = datetime.now(UTC).date()
    days = day_prefixes(root, model_name, window_days, today)
    found = [d for d in days if any(u.endswith(".jsonl") for u in storage_io.list_uris(d))]
    where = model_prefix(root, model_name)
    if not found:
        raise ComponentError(
            f"no serving records of model {model_name!r} under {where} for the last {window_days} "
            f"day(s) ({today - timedelta(days=window_days - 1)} to {today}): is the model served with "
            f"{SERVING_RECORDS_ENV} set, and has it answered requests?"
        )
    print(f"serving records: {len(found)} of the last {window_days} day(s) under {where}")
    return ",".join(found)


def _window(frame: Any) -> dict[str, str]:
    """The serving window from a timestamp column when the log has one, else now."""
    import pandas as pd

    for col in ("timestamp", "time", "_timestamp", "logged_at"):
        if col in frame.columns:
            ts = pd.to_datetime(frame[col], utc=True, errors="coerce").dropna()
            if len(ts):
                fmt = "%Y-%m-%dT%H:%M:%SZ"
                return {"start": ts.min().strftime(fmt), "end": ts.max().strftime(fmt)}
    now = _now()
    return {"start": now, "end": now}


def drift_alert_id(model: str, window_start: str, window_end: str) -> str:
    """``drift-<model>-<window end, compact>-<digest of model and window>``.

    The identity of a drift alert is the model and the serving window it was computed on: a new
    window is a new alert (and, through the router's job id, a new retraining), while the same
    report published again, or redelivered, keeps its id and stays one run. The timestamps are
    normalised first, so ``+00:00`` and ``Z`` spellings of one window give one id.
    """
    start, end = _utc_text(window_start), _utc_text(window_end)
    compact = re.sub(r"[^0-9]", "", end)[:14]
    # At most 63 characters: the id is also a Vertex label value of the version it retrains.
    return f"drift-{label_value(model)[:29]}-{compact}-{_digest(model, start, end)[:12]}"


def _utc_text(value: str) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ComponentError(f"drift report window time {value!r} is not ISO 8601") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def publish_drift_alert(
    *, report: Mapping[str, Any], report_uri: str, alerts_topic: str, trigger: str
) -> dict[str, Any]:
    """Publish a drift alert (events.schemas) when the report found drift and a topic is set."""
    from events.schemas import DRIFT_ALERT_SCHEMA, build_drift_alert

    out: dict[str, Any] = {
        "drift": bool(report["drift"]),
        "drifted_features": list(report["drifted_features"]),
    }
    if not report["drift"]:
        print("no drift: no alert")
        return {**out, "published": False}
    model = str(report["model_name"])
    alert_id = drift_alert_id(model, report["window"]["start"], report["window"]["end"])
    features = [
        {
            "feature": f["feature"],
            "score": float(f["psi"]),
            "threshold": float(report["threshold"]),
            "metric": "psi",
        }
        for f in report["features"]
        if f["drifted"]
    ]
    alert = build_drift_alert(
        alert_id=alert_id,
        model=model,
        features=features,
        threshold=float(report["threshold"]),
        window_start=report["window"]["start"],
        window_end=report["window"]["end"],
        report_uri=report_uri,
        created_at=_now(),
        labels={"mlops_action": "retrain", "champion_version": str(report["champion_version"])},
    )
    out.update(alert_id=alert_id, alert=alert)
    if not alerts_topic:
        print(f"drift alert {alert_id} not published: alerts_topic is empty")
        return {**out, "published": False}
    from pipelines import backends

    message_id = backends.publisher().publish(
        alerts_topic,
        json.dumps(alert, sort_keys=True).encode(),
        {"schema": DRIFT_ALERT_SCHEMA, "model": model, "alert_id": alert_id, "trigger": trigger[:1024]},
    )
    print(f"published drift alert {alert_id} to {alerts_topic} (message {message_id})")
    return {**out, "published": True, "message_id": message_id, "topic": alerts_topic}


# --- batch prediction ---------------------------------------------------------------------------


def batch_predict(*, model_name: str, version: str, data_uri: str, output_uri: str) -> dict[str, Any]:
    from pipelines import storage_io
    from pipelines.components import predict, training

    mv = get_version(model_name, version)
    assert mv is not None
    estimator, meta = training.load_model(mv.artifact_uri)
    frame = data_mod.load_dataset(data_uri)
    scored = predict.predict_frame(estimator, meta, frame)
    target = output_uri or predict.default_output_uri(data_uri)
    storage_io.write_bytes(target, data_mod.to_bytes(scored, data_mod.data_format(target)))
    print(f"scored {len(scored)} rows with {model_name} v{mv.version}; wrote {target}")
    return {"model_name": model_name, "version": mv.version, "rows": len(scored), "output_uri": target}
