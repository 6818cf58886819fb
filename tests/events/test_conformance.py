"""Google's published event samples (tests/data/conformance, vendored) must all parse, into the right fields.

Binary-mode samples are the body of a request: their type and source come from the directory
(storage / pubsub / audit), as Eventarc would send them in ce-* headers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.envelope import RawEvent, from_http, from_json_document
from events.model import (
    AUDIT_WRITTEN,
    PUBSUB_PUBLISHED,
    STORAGE_FINALIZED,
    AuditLogEntry,
    PubSubMessage,
    StorageObject,
)
from events.parse import parse

_REPO = Path(__file__).resolve().parents[2]
# Vendored unchanged from googleapis/google-cloudevents (Apache-2.0, LICENSE beside the files).
ROOT = _REPO / "tests/data/conformance/google-cloudevents"
FILES = sorted(ROOT.rglob("*.json"))
BINARY = {
    "storage": (STORAGE_FINALIZED, "//storage.googleapis.com/projects/_/buckets/sample-bucket"),
    "pubsub": (PUBSUB_PUBLISHED, "//pubsub.googleapis.com/projects/test-project/topics/my-topic"),
    "audit": (AUDIT_WRITTEN, "//cloudaudit.googleapis.com/projects/test-project/logs/activity"),
}


def test_the_samples_are_there() -> None:
    # A missing copy must fail loudly, not skip every case below.
    assert len(FILES) >= 17, f"conformance samples missing under {ROOT}"


def kind_of(path: Path) -> str:
    return next(part for part in path.relative_to(ROOT).parts if part in BINARY)


def load(path: Path) -> RawEvent:
    doc = json.loads(path.read_text())
    if "structured" in path.relative_to(ROOT).parts:
        return from_json_document(doc)
    return from_json_document(doc, *BINARY[kind_of(path)])


def test_samples_are_present() -> None:
    assert len(FILES) >= 17


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_sample_parses(path: Path) -> None:
    event = parse(load(path))
    expected = {"storage": StorageObject, "pubsub": PubSubMessage, "audit": AuditLogEntry}[kind_of(path)]
    assert type(event) is expected  # audit samples are other services: plain audit entries, not rejects


@pytest.mark.parametrize("path", [p for p in FILES if kind_of(p) == "storage"], ids=lambda p: p.name)
def test_storage_fields(path: Path) -> None:
    event = parse(load(path))
    assert isinstance(event, StorageObject)
    if "simple" in path.name:  # generation, metageneration and size are strings here
        assert (event.generation, event.metageneration, event.size) == (1587627537231057, 1, 352)
        assert (event.name, event.content_type, event.crc32c) == ("folder/Test.cs", "text/plain", "rTVTeQ==")
        assert event.md5_hash == "kF8MuJ5+CTJxvyhHS1xzRg=="
    else:  # and numbers here
        assert (event.generation, event.metageneration, event.size) == (96883251, 1, 0)
        assert event.name == "MyFile" and event.metadata == {}
    assert event.bucket in ("sample-bucket", "some-bucket")
    assert event.time_created is not None and event.time_created.year == 2020


@pytest.mark.parametrize(
    "path", [p for p in FILES if kind_of(p) == "pubsub"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_pubsub_fields(path: Path) -> None:
    event = parse(load(path))
    assert isinstance(event, PubSubMessage)
    assert event.message_id == "message-id" and event.topic == "my-topic"
    assert (
        event.publish_time is not None
        and event.publish_time.isoformat() == "2021-02-05T04:06:14.109000+00:00"
    )
    if event.data == b"test message 3":
        assert event.text == "test message 3" and event.json is None
        assert event.attributes == {"attr1": "attr1-value"}
    else:
        assert event.data == b"\x01\x02\x03\x04"


def test_message_id_in_snake_case_only() -> None:
    path = ROOT / "testdata/google/events/cloud/pubsub/v1/MessagePublishedData-duplicatedFields.json"
    doc = json.loads(path.read_text())
    for key in ("messageId", "publishTime"):
        del doc["message"][key]
    event = parse(from_json_document(doc, *BINARY["pubsub"]))
    assert isinstance(event, PubSubMessage) and event.message_id == "message-id"
    assert event.publish_time is not None


@pytest.mark.parametrize(
    "path", [p for p in FILES if kind_of(p) == "audit"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_audit_fields(path: Path) -> None:
    event = parse(load(path))
    assert isinstance(event, AuditLogEntry)
    assert event.service in ("bigquery.googleapis.com", "pubsub.googleapis.com", "monitoring.googleapis.com")
    assert event.principal == "robot@test-project.iam.gserviceaccount.com"
    assert event.insert_id and event.log_name and event.timestamp is not None
    assert event.status_code is None  # "status": {} or absent: the call succeeded


def test_binary_request_over_http_matches_the_file_route() -> None:
    path = ROOT / "examples/binary/storage/StorageObjectData-simple.json"
    type_, source = BINARY["storage"]
    headers = {
        "ce-id": "1",
        "ce-type": type_,
        "ce-source": source,
        "ce-specversion": "1.0",
        "content-type": "application/json",
    }
    event = parse(from_http(headers, path.read_bytes()))
    assert (
        isinstance(event, StorageObject) and event.identity == "sample-bucket/folder/Test.cs#1587627537231057"
    )


def test_structured_request_over_http() -> None:
    path = ROOT / "examples/structured/pubsub/MessagePublishedData.json"
    event = parse(from_http({"Content-Type": "application/cloudevents+json"}, path.read_bytes()))
    assert isinstance(event, PubSubMessage) and event.context.id == "3103425958877813"
    assert event.ordering_key == "ordering-key"
