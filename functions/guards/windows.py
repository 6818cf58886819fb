"""Closed debounce windows: which window released an object, remembered for good.

A late duplicate of an object must launch the job of the window that released it (Vertex's 409
is success), never open a new window: that would be a second run of the same data. So a closed
window is never forgotten. The folder document keeps the last ``RECENT_WINDOWS_KEPT`` closed
windows (most duplicates arrive within seconds); an older one is *archived* before it leaves the
document, as its own immutable document
``mlops-state/debounce/<rule>/<folder digest>/w/<newest created>-<oldest created>-<id>.json``
(creation times in microseconds, zero-padded: names sort by time). The folder document keeps
``through``, the newest creation time of any closed window's objects: an object created later
cannot be in a closed window, so a new object costs no lookup. An older object not in the recent
windows is looked up among the archives whose range covers its creation time: one listing that
starts at that time, then a read of the (usually one) window whose range covers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from functions.state import JsonDict, StateStore

RECENT_WINDOWS_KEPT: Final = 50


def find_closed(
    doc: Mapping[str, Any] | None,
    name: str,
    generation: int,
    created: float | None,
    *,
    store: StateStore,
    key: str,
) -> Mapping[str, Any] | None:
    """The closed window holding ``name#generation``, or None."""
    for window in reversed((doc or {}).get("closed") or []):
        if window["objects"].get(name) == generation:
            return dict(window)
    if not (doc or {}).get("archived"):
        return None
    through = (doc or {}).get("through")
    if created is not None and through is not None and created > through:
        return None
    return find_archived(store, key, name, generation, created)


def find_archived(
    store: StateStore, key: str, name: str, generation: int, created: float | None
) -> Mapping[str, Any] | None:
    prefix = _archive_prefix(key)
    start = f"{prefix}{_us(created)}" if created is not None else ""
    for archived in store.names(prefix, start):
        newest, oldest = _range(archived[len(prefix) :])
        if created is not None and not oldest <= int(_us(created)) <= newest:
            continue
        window = store.read(archived)
        if window is not None and window["objects"].get(name) == generation:
            return window
    return None


def close(doc: JsonDict, window: JsonDict, *, store: StateStore, key: str) -> None:
    """Add ``window`` to the folder document ``doc``; archive the windows that leave the recent list.

    Runs inside a compare-and-swap update, which may run again: archiving is create-if-absent of a
    window that is already closed in the current document, so a repeat writes nothing new."""
    recent = [*doc.get("closed", []), window]
    for old in recent[:-RECENT_WINDOWS_KEPT]:
        store.create(archive_key(key, old), dict(old))
        doc["archived"] = int(doc.get("archived", 0)) + 1
    doc["closed"] = recent[-RECENT_WINDOWS_KEPT:]
    newest = window.get("last_created")
    if newest is not None:
        doc["through"] = max(float(doc.get("through") or newest), float(newest))


def archive_key(key: str, window: Mapping[str, Any]) -> str:
    newest = window.get("last_created") or window.get("released_at") or 0.0
    oldest = window.get("first_created") or newest
    return f"{_archive_prefix(key)}{_us(newest)}-{_us(oldest)}-{window['id']}.json"


def released_names(doc: Mapping[str, Any] | None) -> set[tuple[str, int]]:
    """Every ``(name, generation)`` of the recent closed windows."""
    return {
        (name, int(gen))
        for window in (doc or {}).get("closed") or []
        for name, gen in window["objects"].items()
    }


def _archive_prefix(key: str) -> str:
    return key.removesuffix(".json") + "/w/"


def _us(seconds: float | None) -> str:
    return f"{round((seconds or 0.0) * 1_000_000):020d}"


def _range(name: str) -> tuple[int, int]:
    parts = name.split("-")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return 0, 0
