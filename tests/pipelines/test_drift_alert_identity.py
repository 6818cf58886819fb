"""A drift alert is the model + the serving window: a new window retrains again, a redelivery does not."""

from __future__ import annotations

import re
from typing import Any

from events import envelope, keys, parse
from events.decision import Launch
from events.routing import default_rules_text, route
from pipelines.components import steps
from tests import samples
from tests.catalog import load_rules

RULES = load_rules(default_rules_text(), variables={"DATA_BUCKET": "demo-data"})


def report(start: str, end: str, model: str = "churn") -> dict[str, Any]:
    return {
        "model_name": model,
        "champion_version": "3",
        "drift": True,
        "drifted_features": ["usage"],
        "threshold": 0.2,
        "features": [
            {"feature": "usage", "psi": 0.9, "drifted": True},
            {"feature": "plan", "psi": 0.01, "drifted": False},
        ],
        "window": {"start": start, "end": end},
        # The same serving and reference URIs every week: the old id hashed only these.
        "serving_uri": "gs://b/serving-records/churn/",
        "reference_uri": "gs://b/models/churn/3/reference.parquet",
    }


WEEK_1 = ("2025-05-01T00:00:00Z", "2025-05-07T23:59:59Z")
WEEK_2 = ("2025-05-08T00:00:00Z", "2025-05-14T23:59:59Z")


def alert_of(rep: dict[str, Any]) -> dict[str, Any]:
    out = steps.publish_drift_alert(
        report=rep, report_uri="gs://b/reports/r.json", alerts_topic="", trigger=""
    )
    alert: dict[str, Any] = out["alert"]
    assert out["alert_id"] == alert["alert_id"]
    return alert


def job_id(alert: dict[str, Any], message_id: str) -> str:
    event = parse.parse(
        envelope.from_json_document(samples.pubsub_event(alert, topic="alerts", message_id=message_id))
    )
    decision = route(event, RULES)
    assert isinstance(decision, Launch), decision
    assert decision.request.pipeline == "retraining"
    assert decision.request.parameters["alert_id"] == alert["alert_id"]
    return decision.request.job_id


def test_two_windows_are_two_alerts_and_the_same_report_is_one() -> None:
    first, second = alert_of(report(*WEEK_1)), alert_of(report(*WEEK_2))
    assert first["alert_id"] != second["alert_id"]
    assert alert_of(report(*WEEK_1))["alert_id"] == first["alert_id"]
    assert first["alert_id"].startswith("drift-churn-20250507235959-")


def test_next_weeks_drift_launches_a_new_retraining_and_a_redelivery_does_not() -> None:
    week_1 = alert_of(report(*WEEK_1))
    week_2 = alert_of(report(*WEEK_2))
    assert job_id(week_1, "m1") != job_id(week_2, "m2")
    # Redelivered (a new message id) or published again for the same window: the same job.
    assert job_id(week_1, "m1") == job_id(week_1, "m9") == job_id(alert_of(report(*WEEK_1)), "m10")


def test_the_id_is_the_model_and_the_window_only() -> None:
    assert steps.drift_alert_id("churn", *WEEK_1) == steps.drift_alert_id(
        "churn", "2025-05-01T00:00:00+00:00", "2025-05-08T01:59:59+02:00"
    )
    assert steps.drift_alert_id("churn", *WEEK_1) != steps.drift_alert_id("fraud", *WEEK_1)
    assert steps.drift_alert_id("churn", *WEEK_1) != steps.drift_alert_id("churn", WEEK_1[0], WEEK_2[1])
    other_features = report(*WEEK_1)
    other_features["drifted_features"] = ["plan"]
    other_features["serving_uri"] = "gs://elsewhere/"
    assert alert_of(other_features)["alert_id"] == alert_of(report(*WEEK_1))["alert_id"]


def test_the_id_is_a_valid_label_value_for_any_model_name() -> None:
    alert_id = steps.drift_alert_id("A very long model name, with punctuation! " * 3, *WEEK_1)
    assert len(alert_id) <= 63 and keys.LABEL_VALUE_RE.match(alert_id), alert_id
    # Truncation takes the model name, never the window or its digest.
    assert re.fullmatch(r"drift-[a-z0-9_-]{1,29}-20250507235959-[0-9a-f]{12}", alert_id), alert_id
