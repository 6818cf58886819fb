"""The drift alert this project's monitoring pipeline publishes to Pub/Sub (JSON message data).

Schema ``mlops-events/drift-alert/v1``::

    {
      "schema": "mlops-events/drift-alert/v1",   # required, exactly this string
      "alert_id": "drift-churn-20240501000000-3f9c2a7d1b04",  # required: model + window (see below)
      "model": "churn",                          # required: the model (catalog name) that drifted
      "state": "open",                           # required: "open" (drifted) or "closed" (recovered)
      "features": [                              # required, may be empty when closed
        {"feature": "age", "score": 0.31, "threshold": 0.2, "metric": "psi"}
      ],
      "threshold": 0.2,                          # required: the alerting threshold of the run
      "window": {"start": "2024-04-24T00:00:00Z", "end": "2024-05-01T00:00:00Z"},  # required
      "report_uri": "gs://bucket/reports/churn/2024-05-01.json",                   # required
      "created_at": "2024-05-01T00:05:00Z",      # required, RFC 3339
      "labels": {"mlops_action": "retrain"}      # optional string map, matched like policy labels
    }

Identity: ``alert_id`` names the model and the serving window the drift was computed on (this
project's producer: ``drift-<model>-<window end>-<digest of model, window start, window end>``).
A new window is a new alert, hence a new retraining job; the same alert redelivered, or published
again for the same window, has the same id and stays one run (the job id derives from it).

``metric`` is one of ``DRIFT_METRICS``. Timestamps are RFC 3339 with an offset (``Z``). Unknown
keys are ignored (a later v1 producer may add some); a breaking change is a new schema string.
``build_drift_alert`` is what the producer calls, so it emits exactly what the parser accepts;
``drift_alert_problems`` lists every problem at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from events._values import parse_time, show
from events.errors import ParseError
from events.model import FeatureScore

DRIFT_ALERT_SCHEMA: Final = "mlops-events/drift-alert/v1"
DRIFT_ALERT_SCHEMA_PREFIX: Final = "mlops-events/drift-alert/"
DRIFT_STATES: Final = ("open", "closed")
DRIFT_METRICS: Final = ("psi", "jensen_shannon", "l_infinity", "kl_divergence", "wasserstein", "ks")
_REQUIRED: Final = (
    "schema",
    "alert_id",
    "model",
    "state",
    "features",
    "threshold",
    "window",
    "report_uri",
    "created_at",
)


def build_drift_alert(
    *,
    alert_id: str,
    model: str,
    features: Sequence[FeatureScore | Mapping[str, Any]],
    threshold: float,
    window_start: datetime | str,
    window_end: datetime | str,
    report_uri: str,
    created_at: datetime | str,
    state: str = "open",
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON document of a drift alert. Raises ``ValueError`` listing every problem."""
    doc: dict[str, Any] = {
        "schema": DRIFT_ALERT_SCHEMA,
        "alert_id": alert_id,
        "model": model,
        "state": state,
        "features": [_feature_doc(f) for f in features],
        "threshold": threshold,
        "window": {"start": _iso(window_start), "end": _iso(window_end)},
        "report_uri": report_uri,
        "created_at": _iso(created_at),
    }
    if labels:
        doc["labels"] = dict(labels)
    problems = drift_alert_problems(doc)
    if problems:
        raise ValueError("invalid drift alert: " + "; ".join(problems))
    return doc


def drift_alert_problems(doc: Any) -> list[str]:
    """Every way ``doc`` fails the schema, each naming the field; empty when valid."""
    if not isinstance(doc, Mapping):
        return ["drift alert must be a JSON object"]
    problems = [f"{key} is missing" for key in _REQUIRED if key not in doc]
    if "schema" in doc and doc["schema"] != DRIFT_ALERT_SCHEMA:
        problems.append(f"schema must be {DRIFT_ALERT_SCHEMA!r}, got {show(doc['schema'])}")
    for key in ("alert_id", "model", "report_uri"):
        if key in doc and (not isinstance(doc[key], str) or not doc[key]):
            problems.append(f"{key} must be a non-empty string, got {show(doc[key])}")
    if "state" in doc and doc["state"] not in DRIFT_STATES:
        problems.append(f"state must be one of {', '.join(DRIFT_STATES)}, got {show(doc['state'])}")
    if "threshold" in doc and not _is_number(doc["threshold"]):
        problems.append(f"threshold must be a finite number, got {show(doc['threshold'])}")
    if "features" in doc:
        if isinstance(doc["features"], list):
            for i, feature in enumerate(doc["features"]):
                problems.extend(_feature_problems(feature, f"features[{i}]"))
        else:
            problems.append(f"features must be an array, got {show(doc['features'])}")
    if "window" in doc:
        problems.extend(_window_problems(doc["window"]))
    if "created_at" in doc:
        problems.extend(_time_problems(doc["created_at"], "created_at"))
    labels = doc.get("labels")
    if labels is not None and (
        not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values())
    ):
        problems.append(f"labels must be an object of strings, got {show(labels)}")
    return problems


def validate_drift_alert(doc: Any) -> Mapping[str, Any]:
    """``doc`` when valid, else ``ParseError`` listing every problem (used by the parser)."""
    problems = drift_alert_problems(doc)
    if problems:
        raise ParseError(f"invalid drift alert ({DRIFT_ALERT_SCHEMA}): " + "; ".join(problems))
    assert isinstance(doc, Mapping)
    return doc


def _feature_doc(feature: FeatureScore | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(feature, FeatureScore):
        return {
            "feature": feature.feature,
            "score": feature.score,
            "threshold": feature.threshold,
            "metric": feature.metric,
        }
    return dict(feature)


def _feature_problems(feature: Any, where: str) -> list[str]:
    if not isinstance(feature, Mapping):
        return [f"{where} must be an object, got {show(feature)}"]
    problems = []
    if not isinstance(feature.get("feature"), str) or not feature["feature"]:
        problems.append(f"{where}.feature must be a non-empty string, got {show(feature.get('feature'))}")
    for key in ("score", "threshold"):
        if not _is_number(feature.get(key)):
            problems.append(f"{where}.{key} must be a finite number, got {show(feature.get(key))}")
    if feature.get("metric") not in DRIFT_METRICS:
        problems.append(
            f"{where}.metric must be one of {', '.join(DRIFT_METRICS)}, got {show(feature.get('metric'))}"
        )
    return problems


def _window_problems(window: Any) -> list[str]:
    if not isinstance(window, Mapping):
        return [f"window must be an object with start and end, got {show(window)}"]
    problems = []
    for key in ("start", "end"):
        if key not in window:
            problems.append(f"window.{key} is missing")
        else:
            problems.extend(_time_problems(window[key], f"window.{key}"))
    if not problems and parse_time(window["start"], "window.start") > parse_time(window["end"], "window.end"):
        problems.append(f"window.start {window['start']} is after window.end {window['end']}")
    return problems


def _time_problems(value: Any, where: str) -> list[str]:
    try:
        parse_time(value, where)
    except ParseError as exc:
        return [str(exc)]
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone: use an aware datetime (UTC)")
    return value.isoformat().replace("+00:00", "Z")
