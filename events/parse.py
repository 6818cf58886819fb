"""``RawEvent`` -> typed ``Event``: dispatch on the CloudEvent type, then on the data's content.

- ``google.cloud.storage.object.v1.finalized`` -> ``StorageObject`` (``events._storage``); the
  other object events (deleted, archived, metadataUpdated) are unsupported, with a reason;
- ``google.cloud.pubsub.topic.v1.messagePublished`` -> ``MonitoringAlert``, ``RunRequestMessage``
  or ``PubSubMessage`` by content (``events._pubsub``, ``events._alerts``);
- ``google.cloud.audit.log.v1.written`` -> ``ModelRegistryEvent`` for Vertex AI ModelService
  registry methods, else ``AuditLogEntry`` (``events._audit``);
- any other type -> ``UnsupportedEventError``.

Every failure is a ``PermanentError`` (``ParseError`` or ``UnsupportedEventError``) whose message
names the field and the reason: redelivering the same event can never succeed.
"""

from __future__ import annotations

from events import _audit, _pubsub, _storage
from events.envelope import RawEvent
from events.errors import UnsupportedEventError
from events.model import AUDIT_WRITTEN, PUBSUB_PUBLISHED, STORAGE_FINALIZED, Event

SUPPORTED_TYPES = (STORAGE_FINALIZED, PUBSUB_PUBLISHED, AUDIT_WRITTEN)


def parse(raw: RawEvent, *, max_message_bytes: int = _pubsub.DEFAULT_MAX_MESSAGE_BYTES) -> Event:
    """The typed event for ``raw``; raises ``ParseError`` / ``UnsupportedEventError``."""
    type_ = raw.context.type
    if _storage.is_storage_type(type_):
        return _storage.parse_storage(raw)
    if type_ == PUBSUB_PUBLISHED:
        return _pubsub.classify(_pubsub.parse_message(raw, max_message_bytes))
    if type_ == AUDIT_WRITTEN:
        return _audit.parse_audit(raw)
    raise UnsupportedEventError(
        f"CloudEvent type {type_!r} is not supported (supported: {', '.join(SUPPORTED_TYPES)})"
    )
