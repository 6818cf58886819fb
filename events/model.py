"""Typed events: what an incoming CloudEvent is about, independent of how it was delivered.

Every event is a frozen dataclass with a ``kind`` (the value rules match in ``on:``), the
CloudEvent context it came with, and an ``identity``: the string that names what the event is
about (``bucket/name#generation``, a Pub/Sub message id, an incident id and state, an audit
operation id). Two deliveries of the same fact have the same identity even when their CloudEvent
ids differ; job ids and lineage are derived from it (see ``events.keys``).

``fields()`` is the flat view that routing rules match against and substitute from.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

# CloudEvent types this project receives (google-cloudevents catalog).
STORAGE_FINALIZED: Final = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED: Final = "google.cloud.pubsub.topic.v1.messagePublished"
AUDIT_WRITTEN: Final = "google.cloud.audit.log.v1.written"

# Event kinds, as written in a rule's ``on:``.
EventKind = Literal[
    "storage.object.finalized",
    "monitoring.alert",
    "run.request",
    "pubsub.message",
    "model_registry",
    "audit.log",
]
EVENT_KINDS: Final[tuple[str, ...]] = (
    "storage.object.finalized",
    "monitoring.alert",
    "run.request",
    "pubsub.message",
    "model_registry",
    "audit.log",
)

# Where a monitoring alert came from.
AlertSource = Literal["cloud_monitoring", "model_monitoring", "drift"]

# Canonical ModelService method names (the last segment of the audit ``methodName``).
REGISTRY_METHODS: Final[tuple[str, ...]] = (
    "UploadModel",
    "MergeVersionAliases",
    "UpdateModel",
    "DeleteModelVersion",
    "CopyModel",
)

JsonValue = Any  # JSON-decoded data: dict | list | str | int | float | bool | None


@dataclass(frozen=True)
class Context:
    """The CloudEvent attributes of one delivery (they differ between redeliveries)."""

    id: str
    source: str
    type: str
    time: datetime | None = None
    subject: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageObject:
    """``google.cloud.storage.object.v1.finalized`` (StorageObjectData)."""

    context: Context
    bucket: str
    name: str
    generation: int
    metageneration: int
    size: int
    content_type: str | None = None
    md5_hash: str | None = None
    crc32c: str | None = None
    time_created: datetime | None = None
    updated: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    kind: Literal["storage.object.finalized"] = "storage.object.finalized"

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    @property
    def identity(self) -> str:
        return f"{self.bucket}/{self.name}#{self.generation}"

    def fields(self) -> dict[str, JsonValue]:
        base = posixpath.basename(self.name)
        stem, ext = posixpath.splitext(base)
        return {
            "kind": self.kind,
            "bucket": self.bucket,
            "name": self.name,
            "uri": self.uri,
            "dirname": posixpath.dirname(self.name),
            "basename": base,
            "stem": stem,
            "suffix": ext,
            "parts": self.name.split("/"),
            # The first folder below the top-level one: incoming/<dataset>/file.csv
            "dataset": self.name.split("/")[1] if self.name.count("/") >= 2 else None,
            "generation": self.generation,
            "metageneration": self.metageneration,
            "size": self.size,
            "content_type": self.content_type,
            "md5_hash": self.md5_hash,
            "crc32c": self.crc32c,
            "time_created": _iso(self.time_created),
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class PubSubMessage:
    """``google.cloud.pubsub.topic.v1.messagePublished`` (MessagePublishedData), decoded."""

    context: Context
    topic: str | None  # short topic name, from the CloudEvent source
    project: str | None
    message_id: str
    publish_time: datetime | None
    attributes: Mapping[str, str]
    data: bytes
    json: JsonValue = None  # ``data`` decoded as JSON, when it is JSON
    ordering_key: str | None = None
    subscription: str | None = None

    kind: Literal["pubsub.message"] = "pubsub.message"

    @property
    def identity(self) -> str:
        return f"pubsub/{self.topic or '-'}/{self.message_id}"

    @property
    def text(self) -> str | None:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def fields(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind,
            "topic": self.topic,
            "project": self.project,
            "message_id": self.message_id,
            "publish_time": _iso(self.publish_time),
            "attributes": dict(self.attributes),
            "data": self.json if self.json is not None else self.text,
        }


@dataclass(frozen=True)
class FeatureScore:
    """One feature's drift (or skew) score against its threshold."""

    feature: str
    score: float
    threshold: float | None = None
    metric: str | None = None  # e.g. "psi", "jensen_shannon", "l_infinity"


@dataclass(frozen=True)
class MonitoringAlert:
    """A monitoring alert carried by a Pub/Sub message.

    Three producers share this shape: a Cloud Monitoring incident (``cloud_monitoring``), a Vertex
    AI Model Monitoring anomaly routed through a Cloud Logging sink (``model_monitoring``) and the
    drift alert that this project's monitoring pipeline publishes (``drift``, see
    ``events.schemas.DRIFT_ALERT_SCHEMA``).
    """

    message: PubSubMessage
    source: AlertSource
    alert_id: str  # incident id, log entry insertId, or drift alert id
    state: Literal["open", "closed"]
    model: str | None = None
    policy_name: str | None = None
    policy_labels: Mapping[str, str] = field(default_factory=dict)
    condition: str | None = None
    summary: str | None = None
    features: tuple[FeatureScore, ...] = ()
    threshold: float | None = None
    window: str | None = None
    report_uri: str | None = None
    is_test: bool = False
    started_at: datetime | None = None

    kind: Literal["monitoring.alert"] = "monitoring.alert"

    @property
    def context(self) -> Context:
        return self.message.context

    @property
    def identity(self) -> str:
        # Repeated notifications of one incident state are one fact; open then closed are two.
        return f"alert/{self.source}/{self.alert_id}/{self.state}"

    def fields(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind,
            "topic": self.message.topic,
            "attributes": dict(self.message.attributes),
            "message_id": self.message.message_id,
            "source": self.source,
            "alert_id": self.alert_id,
            "state": self.state,
            "model": self.model,
            "policy_name": self.policy_name,
            "policy_labels": dict(self.policy_labels),
            "condition": self.condition,
            "summary": self.summary,
            "features": [f.feature for f in self.features],
            "max_score": max((f.score for f in self.features), default=None),
            "threshold": self.threshold,
            "window": self.window,
            "report_uri": self.report_uri,
            "is_test": self.is_test,
        }


@dataclass(frozen=True)
class RunRequestMessage:
    """A request to run a named pipeline: ``{"pipeline", "parameters", "idempotency_key"}``."""

    message: PubSubMessage
    pipeline: str
    parameters: Mapping[str, JsonValue]
    idempotency_key: str | None = None
    requested_by: str | None = None

    kind: Literal["run.request"] = "run.request"

    @property
    def context(self) -> Context:
        return self.message.context

    @property
    def identity(self) -> str:
        if self.idempotency_key:
            return f"run-request/key/{self.idempotency_key}"
        return f"run-request/message/{self.message.message_id}"

    def fields(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind,
            "topic": self.message.topic,
            "attributes": dict(self.message.attributes),
            "message_id": self.message.message_id,
            "pipeline": self.pipeline,
            "parameters": dict(self.parameters),
            "idempotency_key": self.idempotency_key,
            "requested_by": self.requested_by,
        }


@dataclass(frozen=True)
class AuditLogEntry:
    """``google.cloud.audit.log.v1.written`` (LogEntryData with an AuditLog protoPayload)."""

    context: Context
    service: str  # protoPayload.serviceName, else from the CloudEvent extension
    method: str  # protoPayload.methodName, as written
    resource_name: str | None
    principal: str | None
    operation_id: str | None
    operation_first: bool | None
    operation_last: bool | None
    insert_id: str | None
    log_name: str | None
    severity: str | None
    timestamp: datetime | None
    request: Mapping[str, JsonValue] = field(default_factory=dict)
    response: Mapping[str, JsonValue] = field(default_factory=dict)
    status_code: int | None = None  # protoPayload.status.code: non-zero means the call failed

    kind: Literal["audit.log"] = "audit.log"

    @property
    def identity(self) -> str:
        # An operation's first and last entries are distinct facts; insertId names one entry.
        if self.operation_id:
            phase = "last" if self.operation_last else "first" if self.operation_first else "entry"
            return f"audit/{self.service}/{self.operation_id}/{phase}"
        return f"audit/{self.service}/{self.insert_id or self.context.id}"

    def fields(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind,
            "service": self.service,
            "method": self.method,
            "resource_name": self.resource_name,
            "principal": self.principal,
            "operation_id": self.operation_id,
        }


@dataclass(frozen=True)
class ModelRegistryEvent:
    """An audit entry of Vertex AI ``ModelService`` that changes the model registry."""

    audit: AuditLogEntry
    method: str  # canonical: one of REGISTRY_METHODS
    api_version: str  # "v1", "v1beta1" or "ui"
    model: str | None  # projects/P/locations/L/models/M (no version)
    model_id: str | None  # M
    version: str | None  # version id, when the entry carries it
    aliases: tuple[str, ...] = ()  # aliases set by this call
    removed_aliases: tuple[str, ...] = ()  # aliases removed ("-alias" in MergeVersionAliases)
    display_name: str | None = None

    kind: Literal["model_registry"] = "model_registry"

    @property
    def context(self) -> Context:
        return self.audit.context

    @property
    def identity(self) -> str:
        return self.audit.identity

    def fields(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind,
            "method": self.method,
            "api_version": self.api_version,
            "model": self.model,
            "model_id": self.model_id,
            "model_name": self.display_name or self.model_id,
            "version": self.version,
            "model_version": f"{self.model}@{self.version}" if self.model and self.version else self.model,
            "aliases": list(self.aliases),
            "removed_aliases": list(self.removed_aliases),
            "display_name": self.display_name,
            "principal": self.audit.principal,
            "operation_id": self.audit.operation_id,
        }


Event = (
    StorageObject | PubSubMessage | MonitoringAlert | RunRequestMessage | AuditLogEntry | ModelRegistryEvent
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
