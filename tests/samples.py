"""Sample events for tests: the files under tests/data/events, parsed or as HTTP requests."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from events import envelope, parse
from events.model import Event

DATA = Path(__file__).resolve().parent / "data" / "events"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return doc


def event(name: str, **data_changes: Any) -> Event:
    doc = load(name)
    doc["data"].update(data_changes)
    return parse.parse(envelope.from_json_document(doc))


def storage_event(
    name: str = "incoming/churn/a.csv",
    *,
    bucket: str = "demo-data",
    generation: int | str = 1,
    size: int | str = 100,
    event_id: str = "e1",
    **extra: Any,
) -> dict[str, Any]:
    """A structured storage.object.v1.finalized CloudEvent."""
    return {
        "specversion": "1.0",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "id": event_id,
        "subject": f"objects/{name}",
        "datacontenttype": "application/json",
        "data": {
            "bucket": bucket,
            "name": name,
            "generation": str(generation),
            "metageneration": "1",
            "size": str(size),
            "contentType": "text/csv",
            **extra,
        },
    }


def pubsub_event(
    payload: Any,
    *,
    topic: str = "mlops-run-requests",
    message_id: str = "m1",
    event_id: str = "p1",
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    message: dict[str, Any] = {
        "data": base64.b64encode(data).decode(),
        "messageId": message_id,
        "publishTime": "2026-01-01T00:00:00Z",
    }
    if attributes:
        message["attributes"] = attributes
    return {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/projects/demo-project/topics/{topic}",
        "id": event_id,
        "datacontenttype": "application/json",
        "data": {"message": message, "subscription": f"projects/demo-project/subscriptions/{topic}-sub"},
    }


def binary_request(doc: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode HTTP request carrying a structured CloudEvent ``doc``."""
    headers = {f"ce-{k}": str(v) for k, v in doc.items() if k not in ("data", "datacontenttype")}
    headers["Content-Type"] = doc.get("datacontenttype", "application/json")
    return headers, json.dumps(doc["data"]).encode()
