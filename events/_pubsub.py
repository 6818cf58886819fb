"""``google.cloud.pubsub.topic.v1.messagePublished`` -> ``PubSubMessage``, then by content:
a monitoring alert (see ``events._alerts``), a run request, or the plain message.

A run request is a JSON object with a ``pipeline`` key::

    {"pipeline": "training", "parameters": {...}, "idempotency_key": "...", "requested_by": "..."}

``parameters``, ``idempotency_key`` and ``requested_by`` are optional; any other key, or a wrong
type, is a ``ParseError`` (a misspelt ``paramters`` must not silently launch with defaults).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from events import _alerts
from events._values import as_object, get, opt_str, opt_time, show, str_map, type_name
from events.envelope import RawEvent
from events.errors import ParseError
from events.model import Event, JsonValue, PubSubMessage, RunRequestMessage

DEFAULT_MAX_MESSAGE_BYTES: Final = 262_144
_TOPIC_RE: Final = re.compile(r"^//pubsub\.googleapis\.com/projects/([^/]+)/topics/([^/]+)$")
RUN_REQUEST_KEYS: Final = ("pipeline", "parameters", "idempotency_key", "requested_by")


def parse_message(raw: RawEvent, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> PubSubMessage:
    if isinstance(raw.data, bytes) or raw.data is None:
        raise ParseError(
            "Pub/Sub event data must be a JSON object (MessagePublishedData), got non-JSON bytes or nothing"
        )
    data = as_object(raw.data, "Pub/Sub event data")
    message = as_object(data.get("message"), "message")
    message_id = message.get("messageId") or message.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise ParseError(f"message.messageId is missing or not a string (got {show(message_id)})")
    payload = _decode(message.get("data"), max_message_bytes)
    m = _TOPIC_RE.match(raw.context.source)
    return PubSubMessage(
        context=raw.context,
        topic=m.group(2) if m else None,
        project=m.group(1) if m else None,
        message_id=message_id,
        publish_time=opt_time(message, "publishTime", "message.publishTime"),
        attributes=str_map(message.get("attributes"), "message.attributes"),
        data=payload,
        json=_json(payload),
        ordering_key=opt_str(message, "orderingKey", "message.orderingKey") or None,
        subscription=opt_str(data, "subscription", "subscription"),
    )


def classify(message: PubSubMessage) -> Event:
    """The most specific event the message is: an alert, a run request, else itself."""
    doc = message.json
    if not isinstance(doc, dict):
        return message
    if _alerts.looks_like_cloud_monitoring(doc):
        return _alerts.parse_cloud_monitoring(message, doc)
    if _alerts.looks_like_drift(doc):
        return _alerts.parse_drift(message, doc)
    if _alerts.looks_like_model_monitoring(doc):
        return _alerts.parse_model_monitoring(message, doc)
    if "pipeline" in doc:
        return parse_run_request(message, doc)
    return message


def parse_run_request(message: PubSubMessage, doc: Mapping[str, Any]) -> RunRequestMessage:
    problems = []
    unknown = sorted(set(doc) - set(RUN_REQUEST_KEYS))
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)} (expected {', '.join(RUN_REQUEST_KEYS)})")
    pipeline = doc.get("pipeline")
    if not isinstance(pipeline, str) or not pipeline:
        problems.append(f"pipeline must be a non-empty string, got {show(pipeline)}")
    parameters = doc.get("parameters")
    if parameters is None:
        parameters = {}
    elif not isinstance(parameters, dict):
        problems.append(f"parameters must be an object, got {type_name(parameters)}")
    for key in ("idempotency_key", "requested_by"):
        value = doc.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(f"{key} must be a non-empty string, got {show(value)}")
    if problems:
        raise ParseError("invalid run request: " + "; ".join(problems))
    return RunRequestMessage(
        message=message,
        pipeline=str(pipeline),
        parameters=dict(parameters),
        idempotency_key=get(doc, "idempotency_key"),
        requested_by=get(doc, "requested_by"),
    )


def _decode(value: Any, limit: int) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise ParseError(f"message.data must be a base64 string, got {type_name(value)}")
    # Check the size before decoding: a huge message must not cost memory first.
    estimate = len(value) // 4 * 3
    if estimate > limit + 2:
        raise ParseError(f"message.data is about {estimate} bytes, over the limit of {limit} bytes")
    try:
        payload = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("message.data is not valid base64") from None
    if len(payload) > limit:
        raise ParseError(f"message.data is {len(payload)} bytes, over the limit of {limit} bytes")
    return payload


def _json(payload: bytes) -> JsonValue:
    if not payload:
        return None
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
