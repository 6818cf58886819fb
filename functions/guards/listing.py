"""The objects of a folder a debounce rule launches for, read from the bucket at release time.

Each listed object is turned into the ``StorageObject`` its finalize event would carry (a listing
returns the same object resource), then kept only if the rule would launch for it: the router
picks this same rule (when a router is given) and hygiene lets it through (no pipeline outputs,
temporary or empty objects). One ``objects.list`` call per page, names under the folder only
(``delimiter="/"``: sub-folders are windows of their own).
"""

from __future__ import annotations

from collections.abc import Callable

from events import envelope, parse
from events.decision import Decision, Launch
from events.errors import PermanentError
from events.model import STORAGE_FINALIZED, Event, StorageObject
from events.options import Debounce
from functions.guards.hygiene import check_hygiene


def list_folder(
    bucket: str,
    prefix: str,
    rule: str,
    debounce: Debounce,
    *,
    routes: Callable[[Event], Decision] | None,
    pipeline_root: str | None,
) -> list[tuple[str, int, float]]:
    """``(name, generation, created)`` of each object directly under ``gs://bucket/prefix``."""
    from pipelines import storage_io

    found: list[tuple[str, int, float]] = []
    for blob in storage_io.storage_client().list_blobs(bucket, prefix=prefix or None, delimiter="/"):
        obj = as_event(bucket, dict(blob._properties))
        if obj is None or obj.time_created is None or check_hygiene(obj, pipeline_root, debounce):
            continue
        if routes is not None:
            decision = routes(obj)
            if not isinstance(decision, Launch) or decision.rule != rule:
                continue
        found.append((obj.name, obj.generation, obj.time_created.timestamp()))
    return found


def as_event(bucket: str, resource: dict[str, object]) -> StorageObject | None:
    """The finalize event of a listed object, or None when the resource cannot be read as one."""
    name = str(resource.get("name", ""))
    attributes = {
        "id": f"listed/{name}#{resource.get('generation')}",
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "type": STORAGE_FINALIZED,
        "specversion": "1.0",
        "subject": f"objects/{name}",
    }
    try:
        event = parse.parse(envelope.from_attributes(attributes, resource))
    except PermanentError:
        return None
    return event if isinstance(event, StorageObject) else None
