"""How an event arrives: HTTP request or CloudEvent attributes -> ``RawEvent`` (context + data).

Three deliveries are accepted (CloudEvents 1.0 HTTP protocol binding, section 3):

- binary mode (3.1): attributes in ``ce-*`` headers, the event data is the body;
- structured mode (3.2): ``Content-Type: application/cloudevents+json``, the whole event is the
  JSON body, data in ``data`` (JSON) or ``data_base64`` (bytes);
- a raw Pub/Sub push envelope ``{"message": {...}, "subscription": "..."}`` with no ``ce-*``
  headers, as functions-framework converts it: type ``messagePublished``, source
  ``//pubsub.googleapis.com/projects/P/topics/T`` from the request path, id = ``messageId``.

Header values are taken as sent, not percent-decoded: the CloudEvents SDK that functions-framework
uses does not decode them either, and both paths must give the same context.

The data is decoded JSON when it is JSON (whatever the content type says: Google sends JSON data
as ``application/json``, but a test harness may not), else the raw bytes; ``events.parse`` decides
whether bytes are acceptable for the event type.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from events._values import parse_time, show
from events.errors import EnvelopeError, ParseError
from events.model import PUBSUB_PUBLISHED, Context, JsonValue

SPEC_VERSION: Final = "1.0"
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json"
REQUIRED_ATTRIBUTES: Final = ("id", "source", "specversion", "type")
# Context attributes of CloudEvents 1.0 (spec section 3.1); everything else is an extension.
_CORE_ATTRIBUTES: Final = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
_PUSH_PATH_RE: Final = re.compile(r"^/?(projects/[^/]+/topics/[^/?#]+)")


@dataclass(frozen=True)
class RawEvent:
    """A CloudEvent's context and its data, before any interpretation of the data."""

    context: Context
    data: JsonValue | bytes | None
    datacontenttype: str | None = None


def from_http(headers: Mapping[str, str], body: bytes, path: str = "/") -> RawEvent:
    """Read a CloudEvent from an HTTP request (binary, structured, or a raw Pub/Sub push)."""
    lower = {k.lower(): v for k, v in headers.items()}
    content_type = lower.get("content-type")
    media_type = (content_type or "").split(";")[0].strip().lower()
    if not body:
        raise EnvelopeError("empty request body: a CloudEvent with data was expected")
    if media_type == BATCH_CONTENT_TYPE:
        raise EnvelopeError("batched CloudEvents (application/cloudevents-batch+json) are not supported")
    if media_type == STRUCTURED_CONTENT_TYPE:
        doc = _json_body(body, "structured-mode body")
        if not isinstance(doc, dict):
            raise EnvelopeError("structured-mode body must be a JSON object (the whole CloudEvent)")
        return _from_structured(doc)
    ce_headers = {k[3:]: v for k, v in lower.items() if k.startswith("ce-")}
    if ce_headers:
        missing = [f"ce-{name}" for name in REQUIRED_ATTRIBUTES if not ce_headers.get(name)]
        if missing:
            raise EnvelopeError(f"binary-mode CloudEvent is missing header(s): {', '.join(missing)}")
        return _make(ce_headers, _decode_data(body), content_type, where="header ce-")
    doc = _try_json(body)
    if isinstance(doc, dict) and isinstance(doc.get("message"), dict):
        return _from_push(doc, path)
    raise EnvelopeError(
        "not a CloudEvent: no ce-* headers, content type "
        f"{content_type or '(none)'} is not {STRUCTURED_CONTENT_TYPE}, "
        "and the body is not a Pub/Sub push envelope"
    )


def from_attributes(attributes: Mapping[str, Any], data: Any) -> RawEvent:
    """From an already-parsed CloudEvent (``ce.get_attributes(), ce.get_data()``)."""
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise EnvelopeError(f"CloudEvent is missing attribute(s): {', '.join(missing)}")
    if isinstance(data, bytes | bytearray):
        data = _decode_data(bytes(data))
    elif isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")  # a lone surrogate must not crash the parser
        decoded = _try_json(raw)
        data = decoded if decoded is not _NOT_JSON else raw
    return _make(attributes, data, attributes.get("datacontenttype"), where="attribute ")


def from_json_document(doc: Any, type_: str | None = None, source: str | None = None) -> RawEvent:
    """For files: a structured CloudEvent (has specversion/type/source/id), or the data of a
    binary-mode request, then ``type_`` and ``source`` are required and the id is a digest of the
    body, so the same file always gives the same event."""
    if isinstance(doc, dict) and "specversion" in doc:
        for name, given in (("type", type_), ("source", source)):
            if given is not None and given != doc.get(name):
                raise EnvelopeError(
                    f"the document is a structured CloudEvent with {name} {show(doc.get(name))}; "
                    f"it conflicts with the given {name} {given!r}"
                )
        return _from_structured(doc)
    missing = [name for name, given in (("type", type_), ("source", source)) if not given]
    if missing:
        raise EnvelopeError(
            "the document is not a structured CloudEvent (no specversion), so it is taken as the "
            f"event data and needs the {' and '.join(missing)} of the event"
        )
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    attributes = {"id": f"sha256-{digest}", "type": type_, "source": source, "specversion": SPEC_VERSION}
    return _make(attributes, doc, "application/json", where="")


# -- helpers ---------------------------------------------------------------------------------

_NOT_JSON: Final[Any] = object()


def _try_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _NOT_JSON


def _json_body(body: bytes, what: str) -> Any:
    doc = _try_json(body)
    if doc is _NOT_JSON:
        raise EnvelopeError(f"{what} is not valid UTF-8 JSON")
    return doc


def _decode_data(body: bytes) -> JsonValue | bytes:
    doc = _try_json(body)
    return body if doc is _NOT_JSON else doc


def _from_structured(doc: Mapping[str, Any]) -> RawEvent:
    attributes = {k: v for k, v in doc.items() if k not in ("data", "data_base64")}
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise EnvelopeError(f"structured CloudEvent is missing attribute(s): {', '.join(missing)}")
    if "data" in doc and "data_base64" in doc:
        raise EnvelopeError("structured CloudEvent has both data and data_base64 (spec 3.1.1: one at most)")
    data: Any = doc.get("data")
    if "data_base64" in doc:
        encoded = doc["data_base64"]
        try:
            if not isinstance(encoded, str):
                raise ValueError
            data = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise EnvelopeError("structured CloudEvent data_base64 is not valid base64") from None
    return _make(attributes, data, doc.get("datacontenttype"), where="attribute ")


def _from_push(doc: Mapping[str, Any], path: str) -> RawEvent:
    message = doc["message"]
    message_id = message.get("messageId") or message.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise EnvelopeError("Pub/Sub push envelope has no message.messageId")
    m = _PUSH_PATH_RE.match(path or "")
    source = "//pubsub.googleapis.com/" + (m.group(1) if m else "")
    attributes: dict[str, Any] = {
        "id": message_id,
        "type": PUBSUB_PUBLISHED,
        "source": source,
        "specversion": SPEC_VERSION,
    }
    publish_time = message.get("publishTime") or message.get("publish_time")
    if isinstance(publish_time, str):
        attributes["time"] = publish_time
    return _make(attributes, dict(doc), "application/json", where="")


def _make(attributes: Mapping[str, Any], data: Any, content_type: Any, where: str) -> RawEvent:
    for name in REQUIRED_ATTRIBUTES:
        if not isinstance(attributes[name], str):
            raise EnvelopeError(f"CloudEvent {where}{name} must be a string, got {show(attributes[name])}")
    if attributes["specversion"] != SPEC_VERSION:
        raise EnvelopeError(
            f"CloudEvent {where}specversion is {show(attributes['specversion'])}; only {SPEC_VERSION} is supported"
        )
    context = Context(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        time=_time(attributes.get("time"), f"{where}time"),
        subject=attributes["subject"] if isinstance(attributes.get("subject"), str) else None,
        extensions={
            k: v if isinstance(v, str) else json.dumps(v, default=str)
            for k, v in attributes.items()
            if k not in _CORE_ATTRIBUTES and v is not None
        },
    )
    return RawEvent(context, data, content_type if isinstance(content_type, str) else None)


def _time(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return parse_time(value, f"CloudEvent {where}")
    except ParseError as exc:
        raise EnvelopeError(str(exc)) from None
