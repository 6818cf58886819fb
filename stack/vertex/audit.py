"""The Cloud Audit Log CloudEvents that Eventarc delivers for Vertex AI ModelService writes.

Shape: a ``google.cloud.audit.log.v1.written`` CloudEvent whose data is a ``LogEntryData`` with an
``AuditLog`` protoPayload (google-cloudevents ``google/events/cloud/audit/v1/data.proto``), with
the extensions Eventarc adds (``servicename``, ``methodname``, ``resourcename``,
``recordedtime``). ``request`` is the call's request message as sent (REST JSON with ``@type``),
``response`` the result. One entry per call, first and last of its operation.

Delivery: binary mode (attributes as ``ce-*`` headers, the LogEntryData as the JSON body) POSTed
to ``audit_events_url`` from one thread, in order, off the request path (Eventarc is
asynchronous too). A POST that keeps failing after a few tries is appended as a structured
CloudEvent to the outbox file and logged: the registry change happened and stays.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

SERVICE: Final = "aiplatform.googleapis.com"
METHOD_PREFIX: Final = "google.cloud.aiplatform.v1.ModelService."
EVENT_TYPE: Final = "google.cloud.audit.log.v1.written"
DATASCHEMA: Final = "https://googleapis.github.io/google-cloudevents/jsonschema/google/events/cloud/audit/v1/LogEntryData.json"
DEFAULT_PRINCIPAL: Final = "vertex-emulator@local-project.iam.gserviceaccount.com"
PRINCIPAL_HEADER: Final = "x-mlops-principal"  # an emulator extension: who made the call

_PERMISSIONS: Final = {
    "UploadModel": "aiplatform.models.upload",
    "DeleteModelVersion": "aiplatform.models.delete",
    "DeleteModel": "aiplatform.models.delete",
}


@dataclass(frozen=True)
class AuditCloudEvent:
    attributes: Mapping[str, str]
    data: Mapping[str, Any]

    def binary_headers(self) -> dict[str, str]:
        headers = {f"ce-{k}": v for k, v in self.attributes.items()}
        headers["content-type"] = "application/json"
        return headers

    def body(self) -> bytes:
        return json.dumps(self.data).encode()

    def structured(self) -> dict[str, Any]:
        return {**self.attributes, "datacontenttype": "application/json", "data": self.data}


def _ts(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_event(
    *,
    method: str,
    project: str,
    location: str,
    resource_name: str,
    request: Mapping[str, Any],
    response: Mapping[str, Any] | None,
    principal: str,
    user_agent: str = "",
    now: datetime | None = None,
) -> AuditCloudEvent:
    """The audit-log CloudEvent of one ``ModelService.<method>`` call on ``resource_name``."""
    now = now or datetime.now(UTC)
    full_method = METHOD_PREFIX + method
    insert_id = uuid.uuid4().hex[:16]
    log_name = f"projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "serviceName": SERVICE,
        "methodName": full_method,
        "resourceName": resource_name,
        "authenticationInfo": {"principalEmail": principal},
        "authorizationInfo": [
            {
                "resource": resource_name,
                "permission": _PERMISSIONS.get(method, "aiplatform.models.update"),
                "granted": True,
            }
        ],
        "requestMetadata": {
            "callerIp": "127.0.0.1",
            "callerSuppliedUserAgent": user_agent,
            "requestAttributes": {"time": _ts(now)},
        },
        "request": dict(request),
        "resourceLocation": {"currentLocations": [location]},
    }
    if response is not None:
        payload["response"] = dict(response)
    data: dict[str, Any] = {
        "insertId": insert_id,
        "logName": log_name,
        "protoPayload": payload,
        "resource": {
            "type": "audited_resource",
            "labels": {"project_id": project, "service": SERVICE, "method": full_method},
        },
        "severity": "NOTICE",
        "timestamp": _ts(now),
        "receiveTimestamp": _ts(now),
        "operation": {"id": uuid.uuid4().hex, "producer": SERVICE, "first": True, "last": True},
    }
    attributes = {
        "specversion": "1.0",
        "id": f"{log_name}{insert_id}{_ts(now)}",
        "source": f"//cloudaudit.googleapis.com/projects/{project}/logs/activity",
        "type": EVENT_TYPE,
        "subject": f"{SERVICE}/{resource_name}",
        "time": _ts(now),
        "dataschema": DATASCHEMA,
        "servicename": SERVICE,
        "methodname": full_method,
        "resourcename": resource_name,
        "recordedtime": _ts(now),
    }
    return AuditCloudEvent(attributes=attributes, data=data)


_STOP: Final = object()


class AuditSink:
    """Delivers audit events in order from one thread; ``url=None`` sends nothing."""

    def __init__(
        self,
        url: str | None,
        outbox: Path,
        *,
        attempts: int = 4,
        backoff: float = 0.25,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.outbox = outbox
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def emit(self, event: AuditCloudEvent) -> None:
        if not self.url:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._deliver_all, name="audit-events", daemon=True)
                self._thread.start()
        self._queue.put(event)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout``); what is left goes to the outbox."""
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._to_outbox(item, "the emulator stopped before it was delivered")

    def _deliver_all(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._deliver(item)

    def _deliver(self, event: AuditCloudEvent) -> None:
        assert self.url
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            req = urllib.request.Request(
                self.url, data=event.body(), headers=event.binary_headers(), method="POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    resp.read()
                self.delivered += 1
                return
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}: {exc.read().decode(errors='replace')[:300]}"
            except OSError as exc:
                problem = str(exc)
        self._to_outbox(event, f"POST to {self.url} failed {self.attempts} times: {problem}")

    def _to_outbox(self, event: AuditCloudEvent, why: str) -> None:
        self.failed += 1
        what = f"{event.attributes['methodname']} {event.attributes['resourcename']}"
        log.error(
            "audit event %s (id %s) NOT delivered: %s; kept in %s",
            what,
            event.attributes["id"],
            why,
            self.outbox,
        )
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError), self.outbox.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"reason": why, "event": event.structured()}) + "\n")


def read_outbox(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
