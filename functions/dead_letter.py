"""Dead letters: a permanent failure is recorded with the original event, then acknowledged.

A record always goes to the log; to a Pub/Sub topic when DEAD_LETTER_TOPIC is set; and to a
JSONL file when MLOPS_DEAD_LETTER_DIR is set (the local stack). ``mlops-events replay``
re-delivers records after a fix. Record schema (``mlops-events/dead-letter/v1``)::

    {"schema", "reason", "entry_point", "received_at", "event": {"attributes": {...},
     "data": <JSON value> | {"base64": "..."}}, "rule"?: str}
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

SCHEMA: Final = "mlops-events/dead-letter/v1"


def encode_data(data: Any) -> Any:
    if isinstance(data, bytes | bytearray):
        return {"base64": base64.b64encode(bytes(data)).decode("ascii")}
    return data


def decode_data(data: Any) -> Any:
    if isinstance(data, dict) and set(data) == {"base64"}:
        return base64.b64decode(data["base64"])
    return data


def make_record(
    *, entry_point: str, attributes: Mapping[str, Any], data: Any, reason: str, rule: str | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "reason": reason,
        "entry_point": entry_point,
        "received_at": datetime.now(UTC).isoformat(),
        "event": {"attributes": {k: str(v) for k, v in attributes.items()}, "data": encode_data(data)},
    }
    if rule:
        record["rule"] = rule
    return record


class DeadLetters:
    """Where dead-letter records go besides the log. Clients are created on first use."""

    def __init__(self, topic_path: str | None, directory: Path | None) -> None:
        self.topic_path = topic_path
        self.directory = directory
        self._publisher: Any = None
        self._lock = threading.Lock()

    def record(self, record: Mapping[str, Any]) -> None:
        data = json.dumps(record, default=str).encode("utf-8")
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
            day = time.strftime("%Y%m%d", time.gmtime())
            # One write() of one line with O_APPEND: concurrent writers never interleave lines.
            fd = os.open(
                self.directory / f"dead-letters-{day}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
            try:
                os.write(fd, data + b"\n")
            finally:
                os.close(fd)
        if self.topic_path:
            attributes = {"entry_point": str(record.get("entry_point", "")), "schema": SCHEMA}
            # .result() raises when publishing fails: the caller then fails the request so the
            # platform redelivers, rather than losing the event.
            self._client().publish(self.topic_path, data, **attributes).result(timeout=30)

    def _client(self) -> Any:
        with self._lock:
            if self._publisher is None:
                from google.cloud import pubsub_v1

                self._publisher = pubsub_v1.PublisherClient()
            return self._publisher
