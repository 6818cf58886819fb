"""Monitoring alerts carried by a Pub/Sub message -> ``MonitoringAlert``.

Three producers are recognised by the shape of the JSON message data:

``cloud_monitoring``: a Cloud Monitoring notification to a Pub/Sub channel, schema version 1.2::

    {"version": "1.2", "incident": {"incident_id", "state": "open"|"closed" (any case),
     "started_at": epoch seconds, "policy_name", "policy_user_labels": {..}, "condition_name",
     "condition": {"name", "displayName", ..}, "summary", "threshold_value", "url",
     "resource": {"type", "labels"}, "metric": {"type", "labels"}, "metadata": {"user_labels"}}}

  ``"version": "test"`` (the console's "send test notification") gives ``is_test=True``. Any
  object with an ``incident`` key and a ``version`` key (or an ``incident`` object) is taken as
  a notification, so a malformed one is a ``ParseError`` rather than a plain message. The model is
  the first of the labels ``model``, ``model_name``, ``model_id`` found in policy_user_labels,
  resource.labels, metric.labels, then metadata.user_labels.

``model_monitoring``: a Vertex AI Model Monitoring anomaly LogEntry, routed by a Cloud Logging sink
  to Pub/Sub (log ``.../logs/aiplatform.googleapis.com%2Fmodel_monitoring_anomaly``)::

    {"insertId", "timestamp", "logName", "resource": {"type", "labels":
       {"model_deployment_monitoring_job", "location", "resource_container"}},
     "jsonPayload": {"@type": "type.googleapis.com/google.cloud.aiplatform.logging.ModelMonitoringAnomaliesLogEntry",
       "anomalyObjective": "RAW_FEATURE_SKEW"|..., "startTime", "endTime",
       "featureAnomalies": [{"featureDisplayName", "deviation", "threshold"}],
       "totalAnomaliesCount", "modelDeploymentMonitoringJob", "deployedModelId"}}

  Recognised by the ``@type`` or the log name. The alert id is the ``insertId``; the state is
  always ``open`` (the log is written only when a feature crosses its threshold). The entry names
  no model: ``model`` comes from a ``model``/``model_name``/``model_id`` label of the entry or its
  resource when present, else None; resource and entry labels are exposed as ``policy_labels``
  so rules can match the monitoring job.

``drift``: this project's own drift alert, ``events.schemas.DRIFT_ALERT_SCHEMA``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from events import schemas
from events._values import (
    as_object,
    get,
    opt_object,
    opt_str,
    opt_time,
    parse_time,
    req_str,
    show,
    str_map,
    to_float,
    to_int,
    type_name,
)
from events.errors import ParseError
from events.model import FeatureScore, MonitoringAlert, PubSubMessage

MODEL_LABELS: Final = ("model", "model_name", "model_id")
MODEL_MONITORING_TYPE_SUFFIX: Final = ".ModelMonitoringAnomaliesLogEntry"
MODEL_MONITORING_LOG: Final = "model_monitoring_anomaly"


def looks_like_cloud_monitoring(doc: Mapping[str, Any]) -> bool:
    return "incident" in doc and ("version" in doc or isinstance(doc["incident"], Mapping))


def looks_like_model_monitoring(doc: Mapping[str, Any]) -> bool:
    payload = doc.get("jsonPayload")
    if isinstance(payload, Mapping) and str(payload.get("@type", "")).endswith(MODEL_MONITORING_TYPE_SUFFIX):
        return True
    log_name = doc.get("logName")
    return isinstance(log_name, str) and log_name.replace("%2F", "/").endswith("/" + MODEL_MONITORING_LOG)


def looks_like_drift(doc: Mapping[str, Any]) -> bool:
    schema = doc.get("schema")
    return isinstance(schema, str) and schema.startswith(schemas.DRIFT_ALERT_SCHEMA_PREFIX)


def parse_cloud_monitoring(message: PubSubMessage, doc: Mapping[str, Any]) -> MonitoringAlert:
    version = doc.get("version")
    if not isinstance(version, str) or not version:
        raise ParseError(
            f"Cloud Monitoring notification version must be a string such as '1.2', got {show(version)}"
        )
    incident = as_object(doc["incident"], "incident")
    alert_id = incident.get("incident_id")
    if isinstance(alert_id, int) and not isinstance(alert_id, bool):
        alert_id = str(alert_id)
    if not isinstance(alert_id, str) or not alert_id:
        raise ParseError(f"incident.incident_id is missing or not a string (got {show(alert_id)})")
    policy_labels = str_map(incident.get("policy_user_labels"), "incident.policy_user_labels")
    resource = opt_object(incident, "resource", "incident.resource")
    metric = opt_object(incident, "metric", "incident.metric")
    metadata = opt_object(incident, "metadata", "incident.metadata")
    condition = opt_object(incident, "condition", "incident.condition")
    threshold = incident.get("threshold_value")
    return MonitoringAlert(
        message=message,
        source="cloud_monitoring",
        alert_id=alert_id,
        state=_state(incident.get("state"), "incident.state"),
        model=_model_from(
            policy_labels,
            _labels(resource, "incident.resource.labels"),
            _labels(metric, "incident.metric.labels"),
            str_map(get(metadata, "userLabels"), "incident.metadata.user_labels"),
        ),
        policy_name=opt_str(incident, "policy_name", "incident.policy_name"),
        policy_labels=policy_labels,
        condition=opt_str(incident, "condition_name", "incident.condition_name")
        or opt_str(condition, "displayName", "incident.condition.displayName")
        or opt_str(condition, "name", "incident.condition.name"),
        summary=opt_str(incident, "summary", "incident.summary"),
        threshold=_opt_float(threshold, "incident.threshold_value"),
        is_test=version.lower() == "test",
        started_at=_epoch(incident.get("started_at"), "incident.started_at"),
    )


def parse_model_monitoring(message: PubSubMessage, doc: Mapping[str, Any]) -> MonitoringAlert:
    payload = as_object(doc.get("jsonPayload"), "jsonPayload")
    resource = opt_object(doc, "resource", "resource")
    labels = {
        **_labels(resource, "resource.labels"),
        **str_map(doc.get("labels"), "labels"),
    }
    anomalies = payload.get("featureAnomalies") or []
    if not isinstance(anomalies, list):
        raise ParseError(f"jsonPayload.featureAnomalies must be an array, got {type_name(anomalies)}")
    features = tuple(_anomaly(item, f"jsonPayload.featureAnomalies[{i}]") for i, item in enumerate(anomalies))
    start = opt_str(payload, "startTime", "jsonPayload.startTime")
    end = opt_str(payload, "endTime", "jsonPayload.endTime")
    objective = opt_str(payload, "anomalyObjective", "jsonPayload.anomalyObjective")
    deployed = opt_str(payload, "deployedModelId", "jsonPayload.deployedModelId")
    total = payload.get("totalAnomaliesCount")
    count = to_int(total, "jsonPayload.totalAnomaliesCount") if total is not None else len(features)
    return MonitoringAlert(
        message=message,
        source="model_monitoring",
        alert_id=req_str(doc, "insertId", "insertId"),
        state="open",
        model=_model_from(labels, {k: v for k, v in payload.items() if isinstance(v, str)}),
        policy_name=opt_str(
            payload, "modelDeploymentMonitoringJob", "jsonPayload.modelDeploymentMonitoringJob"
        ),
        policy_labels=labels,
        condition=objective,
        summary=f"{count} anomal{'y' if count == 1 else 'ies'} ({objective or 'unknown objective'}) "
        f"for deployed model {deployed or '?'}",
        features=features,
        window=f"{start}/{end}" if start and end else None,
        started_at=opt_time(doc, "timestamp", "timestamp"),
    )


def parse_drift(message: PubSubMessage, doc: Mapping[str, Any]) -> MonitoringAlert:
    valid = schemas.validate_drift_alert(doc)
    features = tuple(
        FeatureScore(f["feature"], float(f["score"]), float(f["threshold"]), f["metric"])
        for f in valid["features"]
    )
    window = valid["window"]
    top = max(features, key=lambda f: f.score, default=None)
    summary = f"drift on {len(features)} feature(s) of model {valid['model']}" + (
        f"; highest {top.feature} {top.metric}={top.score:g}" if top else ""
    )
    return MonitoringAlert(
        message=message,
        source="drift",
        alert_id=valid["alert_id"],
        state=valid["state"],
        model=valid["model"],
        policy_labels=dict(valid.get("labels") or {}),
        summary=summary,
        features=features,
        threshold=float(valid["threshold"]),
        window=f"{window['start']}/{window['end']}",
        report_uri=valid["report_uri"],
        started_at=parse_time(valid["created_at"], "created_at"),
    )


def _state(value: Any, where: str) -> Literal["open", "closed"]:
    state = value.lower() if isinstance(value, str) else value
    if state == "open":
        return "open"
    if state == "closed":
        return "closed"
    raise ParseError(f"{where} must be open or closed (any case), got {show(value)}")


def _labels(obj: Mapping[str, Any], where: str) -> dict[str, str]:
    return str_map(obj.get("labels"), where)


def _model_from(*sources: Mapping[str, str]) -> str | None:
    for labels in sources:
        for key in MODEL_LABELS:
            if labels.get(key):
                return labels[key]
    return None


def _anomaly(item: Any, where: str) -> FeatureScore:
    obj = as_object(item, where)
    threshold = obj.get("threshold")
    return FeatureScore(
        feature=req_str(obj, "featureDisplayName", f"{where}.featureDisplayName"),
        score=to_float(obj.get("deviation"), f"{where}.deviation"),
        threshold=None if threshold is None else to_float(threshold, f"{where}.threshold"),
    )


def _opt_float(value: Any, where: str) -> float | None:
    # threshold_value is display text ("0.9", sometimes with units): keep it only when numeric.
    try:
        return None if value in (None, "") else to_float(value, where)
    except ParseError:
        return None


def _epoch(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    seconds = to_int(value, where)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{where} is not a valid epoch time in seconds: {show(value)}") from None
