"""The state store: small JSON documents shared by every instance of every function.

State that must survive cold starts and concurrent instances (debounce windows, cooldowns, active
runs) lives in a bucket (``MLOPS_STATE_BUCKET``, default ``DATA_BUCKET``) under ``mlops-state/``.
Every write is a compare-and-swap on the object's generation (``if_generation_match``; see
``pipelines.storage_io.cas_update_json``): two instances updating one document never lose each
other's change, one of them re-reads and re-applies its update. No database, no lock service.

When no bucket is reachable (a laptop without the storage emulator, unit tests) the same documents
live in a local directory, serialised by ``flock``: correct across processes of one machine only.

Keys are relative paths such as ``debounce/<rule>/<digest>.json``; callers choose them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pipelines import storage_io

JsonDict = dict[str, Any]
PREFIX = "mlops-state/"


class StateStore(Protocol):
    where: str

    def read(self, key: str) -> JsonDict | None:
        """The document, or None when it does not exist."""
        ...

    def update(self, key: str, fn: Callable[[JsonDict | None], JsonDict]) -> JsonDict:
        """Compare-and-swap: apply ``fn`` (pure: it may run several times) and return what was written."""
        ...


class BucketStateStore:
    """Documents at ``gs://<bucket>/mlops-state/<key>``, updated with generation preconditions."""

    def __init__(self, bucket: str, prefix: str = PREFIX) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.where = f"gs://{bucket}/{prefix}"

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{self.prefix}{key}"

    def read(self, key: str) -> JsonDict | None:
        # One GET (media download); a missing object is the common case for a new key.
        from google.api_core import exceptions as gexc

        blob = storage_io.storage_client().bucket(self.bucket).blob(self.prefix + key)
        try:
            data: JsonDict = json.loads(blob.download_as_bytes())
        except gexc.NotFound:
            return None
        return data

    def update(self, key: str, fn: Callable[[JsonDict | None], JsonDict]) -> JsonDict:
        return storage_io.cas_update_json(self.uri(key), fn)


class LocalStateStore:
    """Documents under a local directory (tests, a laptop without the storage emulator)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.where = str(self.directory)

    def read(self, key: str) -> JsonDict | None:
        try:
            data: JsonDict = json.loads((self.directory / key).read_bytes())
        except FileNotFoundError:
            return None
        return data

    def update(self, key: str, fn: Callable[[JsonDict | None], JsonDict]) -> JsonDict:
        return storage_io.cas_update_json(str(self.directory / key), fn)


def current_generation(bucket: str, name: str) -> int | None:
    """The live generation of ``gs://bucket/name`` (one metadata GET), None when it does not exist."""
    blob = storage_io.storage_client().bucket(bucket).get_blob(name)
    return int(blob.generation) if blob is not None else None


def object_created(bucket: str, name: str) -> str | None:
    """When ``gs://bucket/name`` was created (ISO 8601), None when it does not exist."""
    blob = storage_io.storage_client().bucket(bucket).get_blob(name)
    if blob is None:
        return None
    created = blob.time_created
    return created.isoformat() if created is not None else ""
