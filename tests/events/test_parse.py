"""RawEvent -> typed events: the samples in tests/data/events and the rules each one exercises."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from events import errors
from events.envelope import RawEvent, from_json_document
from events.model import (
    AUDIT_WRITTEN,
    PUBSUB_PUBLISHED,
    STORAGE_FINALIZED,
    AuditLogEntry,
    Context,
    FeatureScore,
    ModelRegistryEvent,
    MonitoringAlert,
    PubSubMessage,
    RunRequestMessage,
    StorageObject,
)
from events.parse import parse
from events.schemas import DRIFT_ALERT_SCHEMA, build_drift_alert, drift_alert_problems

DATA = Path(__file__).parent.parent / "data" / "events"
EXPECTED: dict[str, dict[str, Any]] = json.loads((DATA / "expected.json").read_text())
TOPIC = "//pubsub.googleapis.com/projects/p/topics/alerts"


def load(name: str) -> RawEvent:
    return from_json_document(json.loads((DATA / name).read_text()))


def test_every_sample_has_an_expectation() -> None:
    files = {str(p.relative_to(DATA)) for p in DATA.rglob("*.json")} - {"expected.json"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str) -> None:
    expected = EXPECTED[name]
    if "error" in expected:
        error = getattr(errors, expected["error"])
        with pytest.raises(error) as info:
            parse(load(name))
        assert str(info.value) == expected["message"]
        return
    event = parse(load(name))
    assert type(event).__name__ == expected["type"]
    assert event.identity == expected["identity"]
    fields = event.fields()
    assert {k: fields[k] for k in expected["fields"]} == expected["fields"]


# -- storage ------------------------------------------------------------------------------------


def storage(**data: Any) -> RawEvent:
    base = {"bucket": "b", "name": "n.csv", "generation": "5", "metageneration": 1, "size": "10"}
    return RawEvent(
        Context("1", "//storage.googleapis.com/projects/_/buckets/b", STORAGE_FINALIZED), {**base, **data}
    )


@pytest.mark.parametrize("generation", ["1587627537231057", 1587627537231057, 1587627537231057.0])
def test_generation_is_an_int_from_string_or_number(generation: Any) -> None:
    event = parse(storage(generation=generation))
    assert isinstance(event, StorageObject) and event.generation == 1587627537231057


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("generation", "abc", "generation must be an integer (number or decimal string), got 'abc'"),
        ("metageneration", True, "metageneration must be an integer, got boolean True"),
        ("size", 1.5, "size must be an integer (number or decimal string), got 1.5"),
        ("size", "-1", "storage object size must not be negative, got -1"),
        ("generation", None, "storage object generation is missing"),
        ("name", "", "name is missing or empty"),
        ("metadata", {"a": 1}, "metadata.a must be a string, got number 1"),
        ("contentType", 5, "contentType must be a string, got number 5"),
        ("updated", "2024-13-01T00:00:00Z", "updated is not a valid timestamp"),
    ],
)
def test_storage_errors_name_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(errors.ParseError) as info:
        parse(storage(**{field: value}))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T09:58:12.123456789Z", datetime(2024, 5, 1, 9, 58, 12, 123456, tzinfo=UTC)),
        ("2024-05-01T09:58:12.1Z", datetime(2024, 5, 1, 9, 58, 12, 100000, tzinfo=UTC)),
        ("2024-05-01T09:58:12Z", datetime(2024, 5, 1, 9, 58, 12, tzinfo=UTC)),
        ("2024-05-01T11:58:12.5+02:00", datetime(2024, 5, 1, 9, 58, 12, 500000, tzinfo=UTC)),
    ],
)
def test_rfc3339_timestamps(text: str, expected: datetime) -> None:
    event = parse(storage(timeCreated=text))
    assert isinstance(event, StorageObject) and event.time_created == expected


def test_storage_data_that_is_not_json_is_a_parse_error() -> None:
    raw = RawEvent(Context("1", "//s", STORAGE_FINALIZED), b"\x00garbage")
    with pytest.raises(errors.ParseError, match="storage event data must be a JSON object"):
        parse(raw)


@pytest.mark.parametrize("kind", ["deleted", "archived", "metadataUpdated"])
def test_other_storage_events_are_unsupported_with_a_reason(kind: str) -> None:
    raw = RawEvent(Context("1", "//s", f"google.cloud.storage.object.v1.{kind}"), {})
    with pytest.raises(errors.UnsupportedEventError, match=f"object {kind}\\) is not handled"):
        parse(raw)


# -- pub/sub ------------------------------------------------------------------------------------


def pubsub(
    payload: Any = None, *, raw_data: str | None = None, source: str = TOPIC, **message: Any
) -> RawEvent:
    if raw_data is None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        raw_data = base64.b64encode(body).decode()
    msg = {"data": raw_data, "messageId": "m-1", **message}
    return RawEvent(
        Context("1", source, PUBSUB_PUBLISHED), {"message": msg, "subscription": "projects/p/subscriptions/s"}
    )


def test_plain_message_fields() -> None:
    event = parse(
        pubsub(b"\xff\x02", attributes={"k": "v"}, publishTime="2024-05-01T10:00:00.5Z", orderingKey="o")
    )
    assert isinstance(event, PubSubMessage)
    assert (event.topic, event.project, event.message_id) == ("alerts", "p", "m-1")
    assert event.data == b"\xff\x02" and event.json is None and event.text is None  # not UTF-8
    assert event.attributes == {"k": "v"} and event.ordering_key == "o"
    assert event.publish_time == datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert event.subscription == "projects/p/subscriptions/s"


def test_message_id_in_snake_case_and_topic_outside_pubsub() -> None:
    raw = pubsub(
        {"a": 1},
        source="//other/source",
        messageId=None,
        message_id="snake-1",
        publish_time="2024-05-01T10:00:00Z",
    )
    event = parse(raw)
    assert isinstance(event, PubSubMessage)
    assert (event.message_id, event.topic, event.json) == ("snake-1", None, {"a": 1})
    assert event.publish_time == datetime(2024, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (pubsub(raw_data="AQID*"), "message.data is not valid base64"),
        (pubsub(raw_data="AQI"), "message.data is not valid base64"),  # bad padding
        (pubsub({"a": 1}, messageId=None), "message.messageId is missing or not a string (got None)"),
        (pubsub({"a": 1}, attributes={"k": 1}), "message.attributes.k must be a string, got number 1"),
        (pubsub({"a": 1}, publishTime="soon"), "message.publishTime is not an RFC 3339 timestamp: 'soon'"),
        (
            RawEvent(Context("1", TOPIC, PUBSUB_PUBLISHED), {"subscription": "s"}),
            "message must be a JSON object, got null",
        ),
        (RawEvent(Context("1", TOPIC, PUBSUB_PUBLISHED), b"xx"), "Pub/Sub event data must be a JSON object"),
    ],
)
def test_pubsub_errors_name_the_field(raw: RawEvent, message: str) -> None:
    with pytest.raises(errors.ParseError) as info:
        parse(raw)
    assert message in str(info.value)


def test_oversized_message_names_both_sizes() -> None:
    with pytest.raises(errors.ParseError, match=r"message\.data is 101 bytes, over the limit of 100 bytes"):
        parse(pubsub(b"x" * 101), max_message_bytes=100)
    with pytest.raises(
        errors.ParseError, match=r"message\.data is about 3000 bytes, over the limit of 100 bytes"
    ):
        parse(pubsub(b"x" * 3000), max_message_bytes=100)
    assert isinstance(parse(pubsub(b"x" * 100), max_message_bytes=100), PubSubMessage)


def test_json_that_is_not_an_object_stays_a_plain_message() -> None:
    event = parse(pubsub(["pipeline"]))
    assert isinstance(event, PubSubMessage) and event.json == ["pipeline"]


def test_run_request_defaults() -> None:
    event = parse(pubsub({"pipeline": "training"}))
    assert isinstance(event, RunRequestMessage)
    assert (event.pipeline, dict(event.parameters), event.idempotency_key) == ("training", {}, None)
    assert event.identity == "run-request/message/m-1"


# -- alerts -------------------------------------------------------------------------------------


def incident(**fields: Any) -> dict[str, Any]:
    return {"version": "1.2", "incident": {"incident_id": "i-1", "state": "open", **fields}}


@pytest.mark.parametrize(("state", "expected"), [("OPEN", "open"), ("open", "open"), ("Closed", "closed")])
def test_incident_state_is_case_insensitive(state: str, expected: str) -> None:
    event = parse(pubsub(incident(state=state)))
    assert isinstance(event, MonitoringAlert) and event.state == expected
    assert event.identity == f"alert/cloud_monitoring/i-1/{expected}"


@pytest.mark.parametrize(
    ("fields", "model"),
    [
        ({"policy_user_labels": {"model_name": "a"}, "resource": {"labels": {"model": "b"}}}, "a"),
        ({"resource": {"type": "x", "labels": {"model_id": "b"}}, "metric": {"labels": {"model": "c"}}}, "b"),
        ({"metric": {"type": "x", "labels": {"model": "c"}}}, "c"),
        ({"metadata": {"user_labels": {"model": "d"}}}, "d"),
        ({"policy_user_labels": {"team": "x"}}, None),
    ],
)
def test_incident_model_comes_from_labels_in_order(fields: dict[str, Any], model: str | None) -> None:
    event = parse(pubsub(incident(**fields)))
    assert isinstance(event, MonitoringAlert) and event.model == model


def test_incident_started_at_is_epoch_seconds() -> None:
    event = parse(pubsub(incident(started_at=1714557600, threshold_value="n/a")))
    assert isinstance(event, MonitoringAlert)
    assert event.started_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert event.threshold is None  # display text that is not a number is dropped, not an error


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"version": "1.2", "incident": "oops"}, "incident must be a JSON object, got string"),
        ({"version": 1.2, "incident": {}}, "version must be a string such as '1.2', got 1.2"),
        (incident(state=None), "incident.state must be open or closed (any case), got None"),
        (incident(policy_user_labels=["a"]), "incident.policy_user_labels must be a JSON object, got array"),
        (incident(started_at="noon"), "incident.started_at must be an integer"),
    ],
)
def test_malformed_incidents(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ParseError) as info:
        parse(pubsub(doc))
    assert message in str(info.value)


def drift_doc(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "alert_id": "d-1",
        "model": "churn",
        "features": [FeatureScore("age", 0.31, 0.2, "psi")],
        "threshold": 0.2,
        "window_start": datetime(2024, 4, 24, tzinfo=UTC),
        "window_end": datetime(2024, 5, 1, tzinfo=UTC),
        "report_uri": "gs://b/r.json",
        "created_at": datetime(2024, 5, 1, 0, 5, tzinfo=UTC),
    }
    return build_drift_alert(**{**args, **over})


def test_drift_alert_built_by_the_producer_parses_back() -> None:
    doc = drift_doc(state="closed", labels={"mlops_action": "retrain"})
    assert doc["schema"] == DRIFT_ALERT_SCHEMA and doc["window"]["start"] == "2024-04-24T00:00:00Z"
    event = parse(pubsub(doc))
    assert isinstance(event, MonitoringAlert)
    assert (event.source, event.alert_id, event.state, event.model) == ("drift", "d-1", "closed", "churn")
    assert event.features == (FeatureScore("age", 0.31, 0.2, "psi"),)
    assert event.window == "2024-04-24T00:00:00Z/2024-05-01T00:00:00Z"
    assert event.policy_labels == {"mlops_action": "retrain"}
    assert event.started_at == datetime(2024, 5, 1, 0, 5, tzinfo=UTC)


def test_build_drift_alert_lists_every_problem() -> None:
    with pytest.raises(ValueError) as info:
        build_drift_alert(
            alert_id="",
            model="m",
            features=[{"feature": "f", "score": float("nan"), "threshold": 0.1, "metric": "cosine"}],
            threshold=0.2,
            window_start="2024-05-02T00:00:00Z",
            window_end="2024-05-01T00:00:00Z",
            report_uri="gs://b/r",
            created_at="later",
            state="open",
        )
    text = str(info.value)
    for part in (
        "alert_id must be a non-empty string",
        "features[0].score must be a finite number",
        "features[0].metric must be one of psi",
        "window.start 2024-05-02T00:00:00Z is after window.end",
        "created_at is not an RFC 3339 timestamp: 'later'",
    ):
        assert part in text


def test_drift_schema_checks() -> None:
    assert drift_alert_problems(drift_doc()) == []
    assert drift_alert_problems([]) == ["drift alert must be a JSON object"]
    assert (
        "schema must be 'mlops-events/drift-alert/v1', got 'mlops-events/drift-alert/v9'"
        in drift_alert_problems({**drift_doc(), "schema": "mlops-events/drift-alert/v9"})
    )
    with pytest.raises(ValueError, match="has no time zone"):
        drift_doc(created_at=datetime(2024, 5, 1))


def test_model_monitoring_takes_model_from_labels_when_present() -> None:
    doc = json.loads((DATA / "model-monitoring-anomaly.json").read_text())
    entry = json.loads(base64.b64decode(doc["data"]["message"]["data"]))
    entry["labels"] = {"model_name": "churn"}
    event = parse(pubsub(entry))
    assert isinstance(event, MonitoringAlert) and event.model == "churn"
    assert event.policy_labels["model_deployment_monitoring_job"] == "6680511704087920640"
    assert event.features[0] == FeatureScore("age", 0.9, 0.7)


# -- audit logs ---------------------------------------------------------------------------------


def audit(payload: dict[str, Any], **extensions: str) -> RawEvent:
    context = Context(
        "1", "//cloudaudit.googleapis.com/projects/p/logs/activity", AUDIT_WRITTEN, extensions=extensions
    )
    return RawEvent(context, {"insertId": "x", "protoPayload": payload})


def test_service_name_from_the_cloudevent_extension() -> None:
    event = parse(
        audit(
            {
                "methodName": "google.cloud.aiplatform.v1.ModelService.DeleteModelVersion",
                "request": {"name": "projects/p/locations/l/models/m@2"},
            },
            serviceName="aiplatform.googleapis.com",
        )
    )
    assert isinstance(event, ModelRegistryEvent)
    assert (event.method, event.model_id, event.version) == ("DeleteModelVersion", "m", "2")


def test_model_service_of_another_service_is_plain_audit() -> None:
    event = parse(
        audit(
            {
                "serviceName": "example.googleapis.com",
                "methodName": "google.cloud.aiplatform.v1.ModelService.UploadModel",
            }
        )
    )
    assert isinstance(event, AuditLogEntry)


def test_failed_call_still_parses_with_its_status() -> None:
    event = parse(load("vertex-merge-version-aliases-denied.json"))
    assert isinstance(event, ModelRegistryEvent) and event.audit.status_code == 7


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"methodName": "m"},
            "protoPayload.serviceName is missing and the event has no servicename attribute",
        ),
        ({"serviceName": "s"}, "protoPayload.methodName is missing"),
        (
            {"serviceName": "s", "methodName": "m", "status": {"code": "x"}},
            "protoPayload.status.code must be an integer",
        ),
        (
            {"serviceName": "s", "methodName": "m", "request": []},
            "protoPayload.request must be a JSON object, got array",
        ),
        (
            {
                "serviceName": "aiplatform.googleapis.com",
                "methodName": "google.cloud.aiplatform.v1.ModelService.UpdateModel",
                "request": {"model": {"name": 5}},
            },
            "protoPayload.request.model.name must be a model resource name string, got number",
        ),
    ],
)
def test_audit_errors_name_the_field(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ParseError) as info:
        parse(audit(payload))
    assert message in str(info.value)


# -- purity -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_events_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"  # site .pth files may preload the google namespace package
        "import events.envelope, events.parse, events.schemas\n"
        "new = set(sys.modules) - before\n"
        "bad = sorted(m for m in new if m.split('.')[0] in ('google', 'kfp', 'pandas', 'sklearn'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_events_source_never_reads_the_environment() -> None:
    root = Path(__file__).resolve().parents[2] / "events"
    for name in (
        "envelope.py",
        "parse.py",
        "schemas.py",
        "_values.py",
        "_storage.py",
        "_pubsub.py",
        "_alerts.py",
        "_audit.py",
    ):
        text = (root / name).read_text()
        assert "os.environ" not in text and "import os" not in text and "getenv" not in text, name
