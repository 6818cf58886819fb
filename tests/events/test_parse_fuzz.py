"""Property tests: whatever arrives, parsing fails only with a PermanentError (never KeyError,
TypeError, AttributeError...), and valid storage events round-trip their fields."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.envelope import from_http, from_json_document
from events.errors import PermanentError
from events.model import AUDIT_WRITTEN, PUBSUB_PUBLISHED, STORAGE_FINALIZED, StorageObject
from events.parse import parse

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = st.sampled_from(
    [STORAGE_FINALIZED, PUBSUB_PUBLISHED, AUDIT_WRITTEN, "google.cloud.storage.object.v1.deleted", "x.y"]
)
KEYS = st.sampled_from(
    [
        "bucket",
        "name",
        "generation",
        "metageneration",
        "size",
        "message",
        "data",
        "messageId",
        "message_id",
        "attributes",
        "publishTime",
        "protoPayload",
        "serviceName",
        "methodName",
        "request",
        "response",
        "status",
        "code",
        "operation",
        "incident",
        "incident_id",
        "state",
        "version",
        "pipeline",
        "parameters",
        "schema",
        "jsonPayload",
        "featureAnomalies",
        "insertId",
        "model",
        "versionAliases",
        "timeCreated",
        "metadata",
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def survives(call: Any) -> None:
    with contextlib.suppress(PermanentError):  # anything else fails the property
        call()


@SETTINGS
@given(body=st.binary(max_size=300), ce=st.booleans(), structured=st.booleans(), type_=TYPES)
def test_arbitrary_bytes_over_http(body: bytes, ce: bool, structured: bool, type_: str) -> None:
    headers = {"content-type": "application/cloudevents+json" if structured else "application/json"}
    if ce:
        headers.update({"ce-id": "1", "ce-type": type_, "ce-source": "//s", "ce-specversion": "1.0"})
    survives(lambda: parse(from_http(headers, body, "/projects/p/topics/t")))


@SETTINGS
@given(data=json_values, type_=TYPES)
def test_arbitrary_json_data(data: Any, type_: str) -> None:
    survives(lambda: parse(from_json_document(data, type_, "//pubsub.googleapis.com/projects/p/topics/t")))


@SETTINGS
@given(
    doc=st.dictionaries(
        st.sampled_from(["specversion", "id", "type", "source", "time", "data", "data_base64"]), json_values
    )
)
def test_arbitrary_structured_documents(doc: dict[str, Any]) -> None:
    body = json.dumps({"specversion": "1.0", **doc}).encode()
    survives(lambda: parse(from_http({"content-type": "application/cloudevents+json"}, body)))


@SETTINGS
@given(
    payload=json_values, attributes=st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers())
)
def test_arbitrary_pubsub_payloads(payload: Any, attributes: dict[str, Any]) -> None:
    message = {
        "data": base64.b64encode(json.dumps(payload).encode()).decode(),
        "messageId": "m",
        "attributes": attributes,
    }
    survives(
        lambda: parse(from_json_document({"message": message}, PUBSUB_PUBLISHED, "//pubsub.googleapis.com/x"))
    )


@SETTINGS
@given(payload=st.dictionaries(KEYS, json_values, max_size=8), request=json_values)
def test_arbitrary_audit_payloads(payload: dict[str, Any], request: Any) -> None:
    proto = {
        "serviceName": "aiplatform.googleapis.com",
        "methodName": "google.cloud.aiplatform.v1.ModelService.UpdateModel",
        "request": request,
        **payload,
    }
    survives(lambda: parse(from_json_document({"protoPayload": proto}, AUDIT_WRITTEN, "//cloudaudit")))


names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
ints = st.integers(min_value=0, max_value=2**63 - 1)


@SETTINGS
@given(
    bucket=names,
    name=names,
    generation=ints,
    metageneration=ints,
    size=ints,
    as_string=st.booleans(),
    micros=st.integers(min_value=0, max_value=999_999),
    metadata=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_valid_storage_events_round_trip(
    bucket: str,
    name: str,
    generation: int,
    metageneration: int,
    size: int,
    as_string: bool,
    micros: int,
    metadata: dict[str, str],
) -> None:
    created = datetime(2024, 5, 1, 9, 58, 12, micros, tzinfo=UTC)
    conv = str if as_string else int
    data = {
        "bucket": bucket,
        "name": name,
        "generation": conv(generation),
        "metageneration": conv(metageneration),
        "size": conv(size),
        "timeCreated": created.isoformat().replace("+00:00", "Z"),
        "metadata": metadata,
    }
    body = json.dumps(data).encode()
    headers = {"ce-id": "1", "ce-type": STORAGE_FINALIZED, "ce-source": "//s", "ce-specversion": "1.0"}
    event = parse(from_http(headers, body))
    assert isinstance(event, StorageObject)
    assert (event.bucket, event.name, event.generation, event.metageneration, event.size) == (
        bucket,
        name,
        generation,
        metageneration,
        size,
    )
    assert event.time_created == created and dict(event.metadata) == metadata
    assert event.identity == f"{bucket}/{name}#{generation}"
