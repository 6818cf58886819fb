"""HTTP / CloudEvent attributes / JSON documents -> RawEvent."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cloudevents.http import from_http as sdk_from_http

from events.envelope import RawEvent, from_attributes, from_http, from_json_document
from events.errors import EnvelopeError, PermanentError
from events.model import PUBSUB_PUBLISHED, STORAGE_FINALIZED

OBJECT = {"bucket": "b", "name": "incoming/x.csv", "generation": "7", "metageneration": "1", "size": "3"}
BINARY_HEADERS = {
    "ce-id": "evt-1",
    "ce-type": STORAGE_FINALIZED,
    "ce-source": "//storage.googleapis.com/projects/_/buckets/b",
    "ce-specversion": "1.0",
    "ce-time": "2024-05-01T09:58:12.345678912Z",
    "ce-subject": "objects/incoming/x.csv",
    "ce-bucket": "b",
    "content-type": "application/json",
}
PUSH = {
    "message": {
        "data": base64.b64encode(b"hello").decode(),
        "messageId": "m-1",
        "publishTime": "2024-05-01T10:00:00Z",
    },
    "subscription": "projects/p/subscriptions/s",
}


def test_binary_mode_reads_headers_case_insensitively() -> None:
    headers = {k.upper() if k.startswith("ce-") else k: v for k, v in BINARY_HEADERS.items()}
    raw = from_http(headers, json.dumps(OBJECT).encode())
    assert raw.context.id == "evt-1"
    assert raw.context.type == STORAGE_FINALIZED
    assert raw.context.subject == "objects/incoming/x.csv"
    # Nanoseconds are truncated to microseconds, the zone kept.
    assert raw.context.time == datetime(2024, 5, 1, 9, 58, 12, 345678, tzinfo=UTC)
    assert raw.context.extensions == {"bucket": "b"}
    assert raw.data == OBJECT
    assert raw.datacontenttype == "application/json"


@pytest.mark.parametrize("missing", ["ce-id", "ce-type", "ce-source", "ce-specversion"])
def test_binary_mode_names_the_missing_header(missing: str) -> None:
    headers = {k: v for k, v in BINARY_HEADERS.items() if k != missing}
    with pytest.raises(EnvelopeError, match=f"missing header\\(s\\): {missing}$"):
        from_http(headers, b"{}")


def test_binary_mode_lists_every_missing_header() -> None:
    with pytest.raises(EnvelopeError, match="missing header\\(s\\): ce-id, ce-source"):
        from_http({"ce-type": "t", "ce-specversion": "1.0"}, b"{}")


def test_spec_version_other_than_1_0_is_rejected() -> None:
    with pytest.raises(EnvelopeError, match=r"specversion is '0\.3'; only 1\.0 is supported"):
        from_http({**BINARY_HEADERS, "ce-specversion": "0.3"}, b"{}")


def test_binary_body_that_is_not_json_is_kept_as_bytes() -> None:
    # functions-framework hands such a body through as bytes; parse() decides whether it is acceptable.
    raw = from_http({**BINARY_HEADERS, "content-type": "application/octet-stream"}, b"\x00\xffnot json")
    assert raw.data == b"\x00\xffnot json"


def test_empty_body_is_rejected() -> None:
    with pytest.raises(EnvelopeError, match="empty request body"):
        from_http(BINARY_HEADERS, b"")


def test_bad_time_attribute_names_the_attribute() -> None:
    with pytest.raises(EnvelopeError, match="header ce-time is not an RFC 3339 timestamp: 'yesterday'"):
        from_http({**BINARY_HEADERS, "ce-time": "yesterday"}, b"{}")


def structured(**over: object) -> bytes:
    doc = {
        "specversion": "1.0",
        "id": "s-1",
        "type": STORAGE_FINALIZED,
        "source": "//s",
        "data": OBJECT,
        **over,
    }
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def test_structured_mode() -> None:
    raw = from_http(
        {"Content-Type": "application/cloudevents+json; charset=utf-8"}, structured(dataschema="x")
    )
    assert (raw.context.id, raw.context.source, raw.data) == ("s-1", "//s", OBJECT)
    assert raw.context.extensions == {}  # dataschema is a core attribute, not an extension


def test_structured_mode_data_base64_gives_bytes() -> None:
    body = structured(data=None, data_base64=base64.b64encode(b"\x01\x02").decode())
    assert from_http({"content-type": "application/cloudevents+json"}, body).data == b"\x01\x02"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "structured-mode body is not valid UTF-8 JSON"),
        (b"[1, 2]", "structured-mode body must be a JSON object"),
        (structured(id=None), "structured CloudEvent is missing attribute\\(s\\): id"),
        (structured(data_base64="%%%"), "both data and data_base64"),
        (structured(data=None, data_base64="%%%"), "data_base64 is not valid base64"),
        (structured(source=7), "attribute source must be a string, got 7"),
    ],
)
def test_structured_mode_errors(body: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        from_http({"content-type": "application/cloudevents+json"}, body)


def test_batch_mode_is_unsupported() -> None:
    with pytest.raises(EnvelopeError, match="batched CloudEvents"):
        from_http({"content-type": "application/cloudevents-batch+json"}, b"[]")


def test_raw_pubsub_push_takes_the_topic_from_the_path() -> None:
    raw = from_http({"content-type": "application/json"}, json.dumps(PUSH).encode(), "/projects/p/topics/t")
    assert raw.context.type == PUBSUB_PUBLISHED
    assert raw.context.source == "//pubsub.googleapis.com/projects/p/topics/t"
    assert raw.context.id == "m-1"
    assert raw.context.time == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert raw.data == PUSH


def test_raw_pubsub_push_without_topic_path() -> None:
    raw = from_http({}, json.dumps(PUSH).encode())
    assert raw.context.source == "//pubsub.googleapis.com/"


def test_raw_pubsub_push_without_message_id() -> None:
    body = json.dumps({"message": {"data": ""}}).encode()
    with pytest.raises(EnvelopeError, match=r"no message\.messageId"):
        from_http({}, body, "/projects/p/topics/t")


def test_plain_json_without_ce_headers_is_not_a_cloudevent() -> None:
    with pytest.raises(
        EnvelopeError, match="not a CloudEvent: no ce-\\* headers, content type application/json"
    ):
        from_http({"content-type": "application/json"}, b'{"a": 1}')


def test_from_attributes_matches_from_http_for_the_sdk_event() -> None:
    body = json.dumps(OBJECT).encode()
    ce = sdk_from_http(BINARY_HEADERS, body)
    via_sdk = from_attributes(ce.get_attributes(), ce.get_data())
    assert via_sdk == from_http(BINARY_HEADERS, body)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ('{"a": 1}', {"a": 1}),
        (b'{"a": 1}', {"a": 1}),
        ("text", b"text"),
        (b"\x01", b"\x01"),
        (None, None),
    ],
)
def test_from_attributes_normalises_data(data: object, expected: object) -> None:
    attrs = {
        "id": "1",
        "type": "t",
        "source": "s",
        "specversion": "1.0",
        "time": datetime(2024, 1, 1, tzinfo=UTC),
    }
    raw = from_attributes(attrs, data)
    assert raw.data == expected
    assert raw.context.time == datetime(2024, 1, 1, tzinfo=UTC)


def test_from_attributes_names_missing_attributes() -> None:
    with pytest.raises(EnvelopeError, match="missing attribute\\(s\\): id, type"):
        from_attributes({"source": "s", "specversion": "1.0"}, {})


def test_from_json_document_structured() -> None:
    doc = json.loads(structured())
    raw = from_json_document(doc)
    assert isinstance(raw, RawEvent) and raw.context.id == "s-1" and raw.data == OBJECT


def test_from_json_document_binary_body_needs_type_and_source() -> None:
    with pytest.raises(EnvelopeError, match="needs the type and source of the event"):
        from_json_document(OBJECT)
    with pytest.raises(EnvelopeError, match="needs the source of the event"):
        from_json_document(OBJECT, type_=STORAGE_FINALIZED)


def test_from_json_document_binary_body_has_a_stable_id() -> None:
    a = from_json_document(OBJECT, STORAGE_FINALIZED, "//s")
    b = from_json_document(dict(reversed(list(OBJECT.items()))), STORAGE_FINALIZED, "//s")
    other = from_json_document({**OBJECT, "generation": "8"}, STORAGE_FINALIZED, "//s")
    assert a.context.id == b.context.id != other.context.id
    assert a.context.id.startswith("sha256-")
    assert a.data == OBJECT


def test_from_json_document_rejects_conflicting_type() -> None:
    with pytest.raises(EnvelopeError, match="conflicts with the given type 'other'"):
        from_json_document(json.loads(structured()), type_="other")


def test_envelope_errors_are_permanent_value_errors() -> None:
    assert issubclass(EnvelopeError, PermanentError) and issubclass(EnvelopeError, ValueError)
