"""Dead letters: a permanent failure is recorded with the original event, then acknowledged.

A record always goes to the log; to a Pub/Sub topic when DEAD_LETTER_TOPIC is set; and to a
JSONL file when MLOPS_DEAD_LETTER_DIR is set (the local stack). ``mlops-events replay``
re-delivers records after a fix. Record schema (``mlops-events/dead-letter/v1``)::

    {"schema", "id", "reason", "entry_point", "received_at", "rule"?: str,
     "event": {"attributes": {...}, "data": <JSON value> | {"base64": "..."}}}

A record never fails for its size. Above ``MAX_RECORD_BYTES`` (64 KiB of JSON) it is *truncated*:
it keeps the attributes (each value clipped to ``MAX_ATTRIBUTE_BYTES``, at most
``MAX_ATTRIBUTES`` of them), the first ``HEAD_BYTES`` (8 KiB) of the data's JSON text, and says
where the whole record is::

    {..., "event": {"attributes": {...}, "data_head": "<first 8 KiB of the data's JSON>"},
     "truncated": {"bytes": <size of the whole record>, "sha256": "<of the whole record>",
                   "kept_bytes": 8192, "stored_at": "gs://B/mlops-dead-letters/<entry point>/<id>.json" | null}}

The whole record is stored, once, in ``MLOPS_DEAD_LETTER_BUCKET`` (default: the state bucket)
under ``mlops-dead-letters/``, else beside the JSONL files (``<dir>/events/<id>.json``), else
nowhere (``stored_at`` null: only the head survives). ``full_record`` reads it back for replay.
So a record is at most 64 KiB everywhere: far below Pub/Sub's 10 MB message limit and, with the
other fields of the log line, below Cloud Logging's 256 KB entry limit.

``id`` is a digest of the entry point and the event (attributes and data): the same event
delivered again has the same id, and each sink records an id once -- the JSONL file keeps a marker
per id, the bucket object is created only if absent. (Pub/Sub may still carry a second copy when
a publish timed out after it succeeded: consumers de-duplicate on the ``record_id`` attribute.)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from events import keys

SCHEMA: Final = "mlops-events/dead-letter/v1"
MAX_RECORD_BYTES: Final = 64 * 1024
HEAD_BYTES: Final = 8 * 1024
MAX_ATTRIBUTES: Final = 32
MAX_ATTRIBUTE_BYTES: Final = 1024
MAX_REASON_BYTES: Final = 2048
FULL_RECORDS_PREFIX: Final = "mlops-dead-letters/"


def encode_data(data: Any, body: bytes | None = None) -> Any:
    """The data as JSON: itself, or ``{"base64": ...}`` for bytes and for values JSON cannot encode
    (nested deeper than the encoder goes): then the request body, when known."""
    if isinstance(data, bytes | bytearray):
        return {"base64": base64.b64encode(bytes(data)).decode("ascii")}
    try:
        json.dumps(data, default=str)
    except (ValueError, TypeError, RecursionError):
        raw = body if body is not None else repr(data).encode("utf-8", "backslashreplace")
        return {"base64": base64.b64encode(raw).decode("ascii")}
    return data


def decode_data(data: Any) -> Any:
    if isinstance(data, dict) and set(data) == {"base64"}:
        return base64.b64decode(data["base64"])
    return data


def make_record(
    *,
    entry_point: str,
    attributes: Mapping[str, Any],
    data: Any,
    reason: str,
    rule: str | None = None,
    body: bytes | None = None,
) -> dict[str, Any]:
    event = {"attributes": {str(k): str(v) for k, v in attributes.items()}, "data": encode_data(data, body)}
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "id": keys.digest(entry_point + "\n" + _json(event), 32),
        "reason": _clip(reason, MAX_REASON_BYTES),
        "entry_point": entry_point,
        "received_at": datetime.now(UTC).isoformat(),
        "event": event,
    }
    if rule:
        record["rule"] = rule
    return record


def bounded(record: Mapping[str, Any], stored_at: str | None) -> dict[str, Any]:
    """``record`` itself when it fits in MAX_RECORD_BYTES, else its truncated form."""
    whole = _json(record)
    if len(whole) <= MAX_RECORD_BYTES:
        return dict(record)
    event = record.get("event") or {}
    attributes = dict(event.get("attributes") or {})
    kept = dict(list(attributes.items())[:MAX_ATTRIBUTES])
    short: dict[str, Any] = {k: v for k, v in record.items() if k != "event"}
    short["event"] = {
        "attributes": {_clip(k, 128): _clip(str(v), MAX_ATTRIBUTE_BYTES) for k, v in kept.items()},
        "data_head": _json(event.get("data"))[:HEAD_BYTES],
    }
    short["truncated"] = {
        "bytes": len(whole),
        "sha256": hashlib.sha256(whole.encode("ascii")).hexdigest(),
        "kept_bytes": HEAD_BYTES,
        "stored_at": stored_at,
    }
    if len(attributes) > len(kept):
        short["truncated"]["attributes_dropped"] = len(attributes) - len(kept)
    return short


def is_large(record: Mapping[str, Any]) -> bool:
    return len(_json(record)) > MAX_RECORD_BYTES


def full_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The whole record of a truncated one (read from where it was stored), for replay; any other
    record as it is. Raises ValueError when the whole record was not stored or does not match."""
    truncated = record.get("truncated")
    if not truncated:
        return dict(record)
    where = truncated.get("stored_at")
    if not where:
        raise ValueError(
            f"dead letter {record.get('id')} was truncated and its whole event was not stored "
            "(set MLOPS_DEAD_LETTER_BUCKET or MLOPS_DEAD_LETTER_DIR): it cannot be replayed"
        )
    from pipelines import storage_io

    raw = storage_io.read_bytes(str(where))
    if hashlib.sha256(raw).hexdigest() != truncated.get("sha256"):
        raise ValueError(f"{where} does not hold the record {record.get('id')} (digest differs)")
    doc: dict[str, Any] = json.loads(raw)
    return doc


class DeadLetters:
    """Where dead-letter records go besides the log. Clients are created on first use."""

    def __init__(self, topic_path: str | None, directory: Path | None, bucket: str | None = None) -> None:
        self.topic_path = topic_path
        self.directory = directory
        self.bucket = bucket
        self._publisher: Any = None
        self._lock = threading.Lock()

    def where_full(self, record: Mapping[str, Any]) -> str | None:
        """Where the whole record of a large one is stored (None: nowhere configured)."""
        name = f"{keys.slug(str(record.get('entry_point', 'x')), 60)}/{record['id']}.json"
        if self.bucket:
            return f"gs://{self.bucket}/{FULL_RECORDS_PREFIX}{name}"
        if self.directory:
            return str(self.directory / "events" / name)
        return None

    def record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``record`` (bounded) to every configured sink; return what was written. Raises when
        a sink fails: the caller then fails the request so the platform redelivers."""
        stored_at = self.where_full(record) if is_large(record) else None
        if stored_at:
            _store_once(stored_at, _json(record).encode("ascii"))
        written = bounded(record, stored_at)
        line = _json(written).encode("ascii")
        if self.directory:
            self._append_once(str(record["id"]), line)
        if self.topic_path:
            attributes = {
                "entry_point": str(record.get("entry_point", "")),
                "schema": SCHEMA,
                "record_id": str(record["id"]),
            }
            # .result() raises when publishing fails: the caller then fails the request so the
            # platform redelivers, rather than losing the event.
            self._client().publish(self.topic_path, line, **attributes).result(timeout=30)
        return written

    def _append_once(self, record_id: str, line: bytes) -> None:
        assert self.directory is not None
        marks = self.directory / ".recorded"
        marks.mkdir(parents=True, exist_ok=True)
        try:  # the marker first, exclusively: concurrent deliveries of one event append one line
            os.close(os.open(marks / record_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return
        day = time.strftime("%Y%m%d", time.gmtime())
        try:
            # One write() of one line with O_APPEND: concurrent writers never interleave lines.
            fd = os.open(
                self.directory / f"dead-letters-{day}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
            try:
                os.write(fd, line + b"\n")
            finally:
                os.close(fd)
        except OSError:
            (marks / record_id).unlink(missing_ok=True)  # not written: the redelivery writes it
            raise

    def _client(self) -> Any:
        with self._lock:
            if self._publisher is None:
                from google.cloud import pubsub_v1

                self._publisher = pubsub_v1.PublisherClient()
            return self._publisher


def _store_once(where: str, data: bytes) -> None:
    """Create the object (or file) unless it exists: a redelivery stores nothing twice."""
    if where.startswith("gs://"):
        from google.api_core import exceptions as gexc

        from pipelines import storage_io

        bucket, name = storage_io.split_gcs(where)
        blob = storage_io.storage_client().bucket(bucket).blob(name)
        with contextlib.suppress(gexc.PreconditionFailed):  # already stored by an earlier delivery
            blob.upload_from_string(data, content_type="application/json", if_generation_match=0)
        return
    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _json(value: Any) -> str:
    # ASCII: a lone surrogate or any other code point is escaped, never an encoding error.
    return json.dumps(value, default=str, ensure_ascii=True, sort_keys=True)


def _clip(text: str, max_bytes: int) -> str:
    """``text`` cut so that its JSON encoding stays within ``max_bytes``."""
    if len(json.dumps(text)) <= max_bytes:
        return text
    cut = text[: max_bytes - 40]
    while len(json.dumps(cut)) > max_bytes - 40:
        cut = cut[: len(cut) * 3 // 4]
    return f"{cut}...[{len(text)} chars]"
