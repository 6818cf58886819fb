"""CloudEvents as Eventarc and Pub/Sub push deliver them (binary mode), for the reliability run."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STORAGE_TYPE = "google.cloud.storage.object.v1.finalized"
PUBSUB_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
PROJECT = "local-project"


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery: the function's entry point, CloudEvent headers and body."""

    entry_point: str
    headers: dict[str, str]
    body: bytes
    label: str  # what it is, for the report
    subject: str = ""  # the object (gs:// URI), model or request key it is about


def now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def storage_event(
    bucket: str,
    name: str,
    generation: int,
    size: int,
    *,
    metadata: dict[str, str] | None = None,
    event_id: str | None = None,
    time_created: str | None = None,
) -> Delivery:
    data: dict[str, Any] = {
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "generation": str(generation),
        "metageneration": "1",
        "size": str(size),
        "contentType": "text/csv",
        "timeCreated": time_created or now_text(),
        "updated": time_created or now_text(),
    }
    if metadata:
        data["metadata"] = metadata
    headers = {
        "ce-specversion": "1.0",
        "ce-type": STORAGE_TYPE,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-subject": f"objects/{name}",
        "ce-id": event_id or uuid.uuid4().hex,
        "ce-time": time_created or now_text(),
        "content-type": "application/json",
    }
    return Delivery("on_new_data", headers, json.dumps(data).encode(), "storage", f"gs://{bucket}/{name}")


def pubsub_event(
    entry_point: str, topic: str, payload: Any, *, message_id: str, event_id: str | None = None
) -> Delivery:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    body = {
        "message": {
            "data": base64.b64encode(raw).decode(),
            "messageId": message_id,
            "publishTime": now_text(),
        },
        "subscription": f"projects/{PROJECT}/subscriptions/eventarc-{topic}",
    }
    headers = {
        "ce-specversion": "1.0",
        "ce-type": PUBSUB_TYPE,
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{topic}",
        "ce-id": event_id or message_id,
        "ce-time": now_text(),
        "content-type": "application/json",
    }
    return Delivery(entry_point, headers, json.dumps(body).encode(), "pubsub")


def incident(incident_id: str, state: str, model: str) -> dict[str, Any]:
    """A Cloud Monitoring alert notification (schema 1.2)."""
    return {
        "version": "1.2",
        "incident": {
            "incident_id": incident_id,
            "state": state,
            "started_at": int(time.time()),
            "policy_name": "drift",
            "policy_user_labels": {"model": model},
            "condition_name": "drift above threshold",
            "summary": f"drift on {model}",
        },
    }


def redeliver(delivery: Delivery, **changes: str) -> Delivery:
    """The same payload with other headers (a new event id: a duplicate as GCS produces them)."""
    return Delivery(
        delivery.entry_point, {**delivery.headers, **changes}, delivery.body, delivery.label, delivery.subject
    )


def duplicate(delivery: Delivery) -> Delivery:
    return redeliver(delivery, **{"ce-id": uuid.uuid4().hex})
