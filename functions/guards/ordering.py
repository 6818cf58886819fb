"""Ordering (storage events)

An event whose generation is older than the object's live generation is stale (the object was
overwritten; ``gs://bucket/name`` now means the newer data, whose own event launches): skipped.
``MLOPS_ORDERING=storage`` reads the live generation (one metadata GET; a per-instance cache of
the highest generation seen answers the obviously stale ones for free); ``memory`` uses the
cache only; ``off`` trusts the event. A newer generation is new data: it has its own job id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from events.model import StorageObject
from functions.settings import OrderingMode

GENERATIONS_KEPT: Final = 100_000  # objects remembered per instance (least recently seen dropped)


class GenerationCache:
    """The highest generation seen per object, in this instance (shared by its threads)."""

    def __init__(self) -> None:
        self._generations: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def stale(
        self, event: StorageObject, mode: OrderingMode, live_generation: Callable[[str, str], int | None]
    ) -> str | None:
        """Why ``event`` is out of date (overwritten or deleted since), or None. ``live_generation``:
        the object's generation now (one metadata GET), None when it no longer exists."""
        if mode == "off":
            return None
        key = f"{event.bucket}/{event.name}"
        with self._lock:
            seen = self._generations.get(key, 0)
        live = seen
        if event.generation >= seen and mode == "storage":
            found = live_generation(event.bucket, event.name)
            if found is None:
                return (
                    f"{event.uri} no longer exists (deleted after generation {event.generation} was written)"
                )
            live = found
        self._remember(key, max(live, event.generation))
        if event.generation < live:
            return (
                f"stale event: {event.uri} generation {event.generation} was overwritten by generation {live}"
            )
        return None

    def _remember(self, key: str, generation: int) -> None:
        with self._lock:
            if self._generations.get(key, 0) < generation:
                self._generations[key] = generation
            self._generations.move_to_end(key)
            while len(self._generations) > GENERATIONS_KEPT:
                self._generations.popitem(last=False)
