"""What rules may say per event kind: the match criteria that apply, the fields placeholders may
name (``fields()`` of events.model; a test keeps them in step)."""

from __future__ import annotations

from typing import Final

_PUBSUB: Final = ("topic", "attributes")
# Which match criteria apply to which event kind.
MATCH_KEYS: Final[dict[str, frozenset[str]]] = {
    "storage.object.finalized": frozenset(
        {"bucket", "prefix", "glob", "exclude", "suffix", "content_type", "min_size", "max_size", "metadata"}
    ),
    "monitoring.alert": frozenset(
        {*_PUBSUB, "state", "source", "policy_name", "policy_labels", "model", "is_test"}
    ),
    "run.request": frozenset({*_PUBSUB, "pipeline"}),
    "pubsub.message": frozenset(_PUBSUB),
    "model_registry": frozenset({"method", "alias", "model", "api_version"}),
    "audit.log": frozenset({"service", "method"}),
}

# The fields each kind exposes to placeholders (``fields()`` of events.model; a test keeps them in step).
KIND_FIELDS: Final[dict[str, frozenset[str]]] = {
    "storage.object.finalized": frozenset(
        {
            "kind",
            "bucket",
            "name",
            "uri",
            "dirname",
            "basename",
            "stem",
            "suffix",
            "parts",
            "dataset",
            "generation",
            "metageneration",
            "size",
            "content_type",
            "md5_hash",
            "crc32c",
            "time_created",
            "metadata",
        }
    ),
    "pubsub.message": frozenset(
        {"kind", "topic", "project", "message_id", "publish_time", "attributes", "data"}
    ),
    "monitoring.alert": frozenset(
        {
            "kind",
            "topic",
            "attributes",
            "message_id",
            "source",
            "alert_id",
            "state",
            "model",
            "policy_name",
            "policy_labels",
            "condition",
            "summary",
            "features",
            "max_score",
            "threshold",
            "window",
            "report_uri",
            "is_test",
        }
    ),
    "run.request": frozenset(
        {
            "kind",
            "topic",
            "attributes",
            "message_id",
            "pipeline",
            "parameters",
            "idempotency_key",
            "requested_by",
        }
    ),
    "model_registry": frozenset(
        {
            "kind",
            "method",
            "api_version",
            "model",
            "model_id",
            "model_name",
            "version",
            "model_version",
            "aliases",
            "removed_aliases",
            "display_name",
            "principal",
            "operation_id",
        }
    ),
    "audit.log": frozenset({"kind", "service", "method", "resource_name", "principal", "operation_id"}),
}
