"""Serving records: sampled request/response lines written in batches, off the request path.

Layout (what the monitoring pipeline reads by default)::

    <MLOPS_SERVING_RECORDS_URI>/<model>/<YYYY-MM-DD>/<YYYYmmddTHHMMSSffffffZ>-<uuid>.jsonl

one JSON line per instance (the day and the file name are UTC)::

    {"timestamp": "2025-01-01T12:00:00.123456Z", "request_id": "...", "endpoint_id": "123",
     "deployed_model_id": "456", "model_name": "churn", "version": "3",
     "instance": {"usage": 10.5, "plan": "pro", ...}, "prediction": {"prediction": 1, ...}}

``instance`` is always keyed by the model's feature names (array instances are named on the way
in; other keys of object instances are not kept). Every object carries the custom metadata
``mlops-events-output: "true"``, so the storage trigger never takes records for training data.

Sampling is per request (all of a request's instances, or none). ``RecordWriter.offer`` only
appends to a bounded buffer; a background thread turns it into JSON and writes it every
``batch`` records or ``flush_seconds``, and at ``close``. A full buffer drops the request's
records and counts them: a slow or broken bucket never slows predictions.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

log = logging.getLogger(__name__)

OUTPUT_METADATA: Final = {"mlops-events-output": "true"}  # the storage trigger's loop guard
CONTENT_TYPE: Final = "application/x-ndjson"

Write = Callable[[str, bytes, str, Mapping[str, str]], None]
_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), default=str).encode


def model_segment(model_name: str) -> str:
    """The model's folder name under the records root (unsafe characters become ``-``)."""
    segment = re.sub(r"[^A-Za-z0-9_.-]+", "-", model_name).strip("-.")
    if not segment:
        raise ValueError(f"model name {model_name!r} gives no usable folder name")
    return segment


def model_prefix(records_uri: str, model_name: str) -> str:
    return f"{records_uri.rstrip('/')}/{model_segment(model_name)}/"


def day_prefixes(records_uri: str, model_name: str, days: int, today: date) -> list[str]:
    """The folders of the last ``days`` UTC days up to ``today``, oldest first."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    base = model_prefix(records_uri, model_name)
    return [f"{base}{today - timedelta(days=n):%Y-%m-%d}/" for n in range(days - 1, -1, -1)]


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Request:
    moment: datetime
    request_id: str
    rows: Sequence[Mapping[str, Any]]
    predictions: Sequence[Any]


@dataclass
class RecordStats:
    sampled: int = 0  # records accepted into the buffer
    skipped: int = 0  # records left out by sampling
    dropped: int = 0  # records refused because the buffer was full
    written: int = 0  # records in objects written
    lost: int = 0  # records whose write failed for good (at close)
    objects: int = 0
    write_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class RecordWriter:
    records_uri: str
    model_name: str
    context: Mapping[str, Any]  # endpoint_id, deployed_model_id, model_name, version
    sample_rate: float = 1.0
    batch: int = 1000
    flush_seconds: float = 30.0
    capacity: int = 20000
    write: Write | None = None  # default: storage_io.write_bytes
    random: Callable[[], float] = random.random
    stats: RecordStats = field(default_factory=RecordStats)

    def __post_init__(self) -> None:
        self._prefix = model_prefix(self.records_uri, self.model_name)
        self._pending: list[_Request] = []
        self._pending_records = 0
        self._first_at = 0.0  # monotonic time the oldest pending record arrived
        self._retry_at = 0.0  # after a failed write, no attempt before this
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="serving-records", daemon=True)
        self._thread.start()

    @property
    def prefix(self) -> str:
        return self._prefix

    def offer(self, request_id: str, rows: Sequence[Mapping[str, Any]], predictions: Sequence[Any]) -> bool:
        """Keep this request's records if sampled and there is room; never blocks on I/O."""
        n = len(rows)
        sampled = self.sample_rate >= 1 or (self.sample_rate > 0 and self.random() < self.sample_rate)
        with self._cond:
            if not sampled:
                self.stats.skipped += n
                return False
            if self._closing or self._pending_records + n > self.capacity:
                self.stats.dropped += n
                return False
            if not self._pending:
                self._first_at = time.monotonic()
                self._cond.notify()  # the thread now has a deadline to wait for
            self._pending.append(_Request(datetime.now(UTC), request_id, rows, predictions))
            self._pending_records += n
            self.stats.sampled += n
            if self._pending_records >= self.batch:
                self._cond.notify()
        return True

    def close(self, timeout: float = 10.0) -> RecordStats:
        """Write what is buffered and stop the thread (waits at most ``timeout`` seconds)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        with self._cond:
            if self._thread.is_alive():  # stuck in a write: what is not written now never will be
                self.stats.lost = self.stats.sampled - self.stats.written
            return RecordStats(**self.stats.as_dict())

    def _due(self) -> bool:
        if self._closing:
            return True
        now = time.monotonic()
        if not self._pending or now < self._retry_at:
            return False
        return self._pending_records >= self.batch or now >= self._first_at + self.flush_seconds

    def _wait(self) -> float:
        if not self._pending:
            return 60.0  # offer() notifies when the first record arrives
        now = time.monotonic()
        target = now if self._pending_records >= self.batch else self._first_at + self.flush_seconds
        return max(max(target, self._retry_at) - now, 0.001)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    self._cond.wait(self._wait())
                batch, self._pending, self._pending_records = self._pending, [], 0
                closing = self._closing
            if batch:
                self._flush(batch, final=closing)
            if closing:
                return

    def _flush(self, batch: list[_Request], *, final: bool) -> None:
        by_day: dict[str, list[_Request]] = {}
        for request in batch:
            by_day.setdefault(f"{request.moment:%Y-%m-%d}", []).append(request)
        write = self.write or _storage_write
        now = datetime.now(UTC)
        for day, requests in by_day.items():
            uri = f"{self._prefix}{day}/{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.jsonl"
            n = sum(len(r.rows) for r in requests)
            try:
                write(uri, self._encode(requests), CONTENT_TYPE, OUTPUT_METADATA)
            except Exception as exc:  # the bucket's problem must never reach a request
                log.error("serving records: writing %s failed: %s: %s", uri, type(exc).__name__, exc)
                kept = not final and self._requeue(requests, n)
                with self._cond:
                    self.stats.write_errors += 1
                    self.stats.lost += 0 if kept else n
                continue
            with self._cond:
                self.stats.written += n
                self.stats.objects += 1

    def _encode(self, requests: list[_Request]) -> bytes:
        # The fields shared by a request's lines are encoded once (this runs in the writer thread,
        # but it shares the interpreter with the requests: keep it cheap).
        lines = []
        for request in requests:
            head = _ENCODE(
                {"timestamp": timestamp(request.moment), "request_id": request.request_id, **self.context}
            )[:-1]
            for row, prediction in zip(request.rows, request.predictions, strict=True):
                lines.append(f'{head},"instance":{_ENCODE(row)},"prediction":{_ENCODE(prediction)}}}')
        return ("\n".join(lines) + "\n").encode()

    def _requeue(self, requests: list[_Request], n: int) -> bool:
        """Put a failed write's requests back for a later attempt, if the buffer has room."""
        with self._cond:
            if self._pending_records + n > self.capacity:
                return False
            if not self._pending:
                self._first_at = time.monotonic()
            self._pending[:0] = requests
            self._pending_records += n
            self._retry_at = time.monotonic() + self.flush_seconds
        return True


def _storage_write(uri: str, data: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
    from pipelines import storage_io

    storage_io.write_bytes(uri, data, content_type, metadata=metadata)
