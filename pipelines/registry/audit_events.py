"""The audit-log CloudEvents that Eventarc delivers for Vertex AI Model Registry calls, built for the
local registry so that ``on_model_registry_event`` runs unchanged locally.

Shape: a ``google.cloud.audit.log.v1.written`` CloudEvent whose data is a ``LogEntryData`` with an
``AuditLog`` protoPayload (google-cloudevents ``google/events/cloud/audit/v1/data.proto``); the
CloudEvent extensions ``servicename``, ``methodname``, ``resourcename`` and ``recordedtime`` are the
ones Eventarc adds to audit-log events.

Delivery: binary mode (attributes as ``ce-*`` headers, LogEntryData as the JSON body) POSTed to
``MLOPS_REGISTRY_EVENTS_URL``; without it, or when the POST fails, each event is appended as a
structured CloudEvent to ``$MLOPS_STATE_DIR/outbox/registry-events.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

SERVICE: Final = "aiplatform.googleapis.com"
METHOD_PREFIX: Final = "google.cloud.aiplatform.v1.ModelService."
UPLOAD_MODEL: Final = METHOD_PREFIX + "UploadModel"
MERGE_VERSION_ALIASES: Final = METHOD_PREFIX + "MergeVersionAliases"
EVENT_TYPE: Final = "google.cloud.audit.log.v1.written"
DATASCHEMA: Final = "https://googleapis.github.io/google-cloudevents/jsonschema/google/events/cloud/audit/v1/LogEntryData.json"
OUTBOX_NAME: Final = "registry-events.jsonl"


@dataclass(frozen=True)
class AuditCloudEvent:
    """One CloudEvent: its attributes (``id``, ``source``, ``type``... and extensions) and data."""

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


def model_resource(project: str, location: str, model_id: str) -> str:
    return f"projects/{project}/locations/{location}/models/{model_id}"


def build_event(
    *,
    method: str,
    project: str,
    location: str,
    model_id: str,
    version: str,
    request: Mapping[str, Any],
    response: Mapping[str, Any] | None = None,
    principal: str,
    now: datetime | None = None,
) -> AuditCloudEvent:
    """An audit-log CloudEvent for one ModelService call on ``models/<model_id>@<version>``."""
    now = now or datetime.now(UTC)
    resource_name = f"{model_resource(project, location, model_id)}@{version}"
    insert_id = uuid.uuid4().hex[:16]
    log_name = f"projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "serviceName": SERVICE,
        "methodName": method,
        "resourceName": resource_name,
        "authenticationInfo": {"principalEmail": principal},
        "authorizationInfo": [
            {"resource": f"projects/{project}", "permission": _permission(method), "granted": True}
        ],
        "requestMetadata": {"callerSuppliedUserAgent": "mlops-events-local-registry"},
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
            "labels": {"project_id": project, "service": SERVICE, "method": method},
        },
        "severity": "NOTICE",
        "timestamp": _ts(now),
        "receiveTimestamp": _ts(now),
        # One entry per call: both the first and the last entry of its operation.
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
        "methodname": method,
        "resourcename": resource_name,
        "recordedtime": _ts(now),
    }
    return AuditCloudEvent(attributes=attributes, data=data)


def _permission(method: str) -> str:
    return {
        UPLOAD_MODEL: "aiplatform.models.upload",
        MERGE_VERSION_ALIASES: "aiplatform.models.update",
    }.get(method, "aiplatform.models.update")


def upload_model_event(
    *,
    project: str,
    location: str,
    model_id: str,
    version: str,
    artifact_uri: str,
    labels: Mapping[str, str],
    aliases: Sequence[str],
    description: str,
    principal: str,
    parent_exists: bool,
) -> AuditCloudEvent:
    """``ModelService.UploadModel`` of a new version (with ``parentModel`` when the model existed)."""
    model = model_resource(project, location, model_id)
    request: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelRequest",
        "parent": f"projects/{project}/locations/{location}",
        "model": {
            "displayName": model_id,
            "description": description,
            "artifactUri": artifact_uri,
            "labels": dict(labels),
            "versionAliases": list(aliases),
        },
    }
    if parent_exists:
        request["parentModel"] = model
    else:
        request["modelId"] = model_id
    response = {
        "@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse",
        "model": model,
        "modelVersionId": version,
    }
    return build_event(
        method=UPLOAD_MODEL,
        project=project,
        location=location,
        model_id=model_id,
        version=version,
        request=request,
        response=response,
        principal=principal,
    )


def merge_version_aliases_event(
    *,
    project: str,
    location: str,
    model_id: str,
    version: str,
    version_aliases: Sequence[str],
    principal: str,
) -> AuditCloudEvent:
    """``ModelService.MergeVersionAliases`` (``-alias`` entries remove an alias)."""
    name = f"{model_resource(project, location, model_id)}@{version}"
    request = {
        "@type": "type.googleapis.com/google.cloud.aiplatform.v1.MergeVersionAliasesRequest",
        "name": name,
        "versionAliases": list(version_aliases),
    }
    response = {
        "@type": "type.googleapis.com/google.cloud.aiplatform.v1.Model",
        "name": model_resource(project, location, model_id),
        "displayName": model_id,
        "versionId": version,
        "versionAliases": [a for a in version_aliases if not a.startswith("-")],
    }
    return build_event(
        method=MERGE_VERSION_ALIASES,
        project=project,
        location=location,
        model_id=model_id,
        version=version,
        request=request,
        response=response,
        principal=principal,
    )


# --- delivery --------------------------------------------------------------------------------

_outbox_lock = threading.Lock()


class EventSink:
    """Delivers audit events: POST (binary mode) to ``url`` when set, else append to the outbox.

    A failed POST is logged as an error naming the event and kept in the outbox: the registry
    change already happened and must not be undone or repeated because a listener was down.
    """

    def __init__(self, url: str | None, state_dir: Path | None, timeout: float = 30.0) -> None:
        self.url = url
        self.state_dir = state_dir
        self.timeout = timeout

    @classmethod
    def from_env(cls) -> EventSink:
        state = os.environ.get("MLOPS_STATE_DIR")
        return cls(os.environ.get("MLOPS_REGISTRY_EVENTS_URL") or None, Path(state) if state else None)

    @property
    def outbox(self) -> Path | None:
        return self.state_dir / "outbox" / OUTBOX_NAME if self.state_dir else None

    def emit(self, event: AuditCloudEvent) -> bool:
        """Deliver one event; True when it was POSTed with a 2xx answer."""
        what = f"{event.attributes['methodname']} {event.attributes['resourcename']}"
        if self.url:
            req = urllib.request.Request(
                self.url, data=event.body(), headers=event.binary_headers(), method="POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    resp.read()
                log.info("registry event %s delivered to %s", what, self.url)
                return True
            except (urllib.error.URLError, OSError) as exc:
                detail = (
                    exc.read().decode(errors="replace")[:500]
                    if isinstance(exc, urllib.error.HTTPError)
                    else ""
                )
                log.error(
                    "registry event %s (id %s) NOT delivered to %s: %s %s",
                    what,
                    event.attributes["id"],
                    self.url,
                    exc,
                    detail,
                )
        self._append_outbox(event, what)
        return False

    def _append_outbox(self, event: AuditCloudEvent, what: str) -> None:
        outbox = self.outbox
        if outbox is None:
            log.warning(
                "registry event %s not delivered anywhere: set MLOPS_REGISTRY_EVENTS_URL or MLOPS_STATE_DIR",
                what,
            )
            return
        outbox.parent.mkdir(parents=True, exist_ok=True)
        with _outbox_lock, outbox.open("a", encoding="utf-8") as f:
            f.write(json.dumps(event.structured()) + "\n")
        log.info("registry event %s written to %s", what, outbox)


def read_outbox(state_dir: Path) -> list[dict[str, Any]]:
    """The structured CloudEvents kept in the outbox, oldest first."""
    path = state_dir / "outbox" / OUTBOX_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
