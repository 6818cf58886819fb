"""``google.cloud.storage.object.v1.finalized``: StorageObjectData -> ``StorageObject``.

GCS writes int64 fields (generation, metageneration, size) as decimal strings in some deliveries
and as numbers in others (both appear in Google's own samples): both are accepted.
"""

from __future__ import annotations

from typing import Final

from events._values import as_object, get, opt_str, opt_time, req_str, str_map, to_int
from events.envelope import RawEvent
from events.errors import ParseError, UnsupportedEventError
from events.model import STORAGE_FINALIZED, StorageObject

# Other object events of the catalog: recognised so the reason names them, never handled.
OTHER_STORAGE_TYPES: Final = {
    "google.cloud.storage.object.v1.deleted": "deleted",
    "google.cloud.storage.object.v1.archived": "archived",
    "google.cloud.storage.object.v1.metadataUpdated": "metadataUpdated",
}


def is_storage_type(type_: str) -> bool:
    return type_ == STORAGE_FINALIZED or type_ in OTHER_STORAGE_TYPES


def parse_storage(raw: RawEvent) -> StorageObject:
    type_ = raw.context.type
    if type_ != STORAGE_FINALIZED:
        raise UnsupportedEventError(
            f"storage event {type_} (object {OTHER_STORAGE_TYPES.get(type_, '?')}) is not handled: "
            f"only {STORAGE_FINALIZED} (a new object) starts work"
        )
    if isinstance(raw.data, bytes) or raw.data is None:
        raise ParseError(
            "storage event data must be a JSON object (StorageObjectData), got non-JSON bytes or nothing"
        )
    data = as_object(raw.data, "storage event data")
    ints = {}
    for field in ("generation", "metageneration", "size"):
        value = data.get(field)
        if value is None:
            raise ParseError(f"storage object {field} is missing")
        ints[field] = to_int(value, field)
        if ints[field] < 0:
            raise ParseError(f"storage object {field} must not be negative, got {ints[field]}")
    return StorageObject(
        context=raw.context,
        bucket=req_str(data, "bucket", "bucket"),
        name=req_str(data, "name", "name"),
        generation=ints["generation"],
        metageneration=ints["metageneration"],
        size=ints["size"],
        content_type=opt_str(data, "contentType", "contentType"),
        md5_hash=opt_str(data, "md5Hash", "md5Hash"),
        crc32c=opt_str(data, "crc32c", "crc32c"),
        time_created=opt_time(data, "timeCreated", "timeCreated"),
        updated=opt_time(data, "updated", "updated"),
        metadata=str_map(get(data, "metadata"), "metadata"),
    )
