"""Steps of monitoring: drift of the serving records against the champion's data, and the drift alert."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipelines.components import data as data_mod
from pipelines.components.errors import (
    ComponentError,
)
from pipelines.components.steps.common import (
    CHAMPION,
    SERVING_RECORDS_ENV,
    SERVING_WINDOW_DAYS,
    _digest,
    _now,
    get_version,
    label_value,
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
