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
import os
import threading
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

    def create(self, key: str, doc: JsonDict) -> bool:
        """Write ``doc`` unless ``key`` exists; True when this call wrote it. For immutable documents."""
        ...

    def names(self, prefix: str, start: str = "") -> list[str]:
        """Keys under ``prefix`` that sort at or after ``start`` (a key), sorted."""
        ...

    def server_time(self) -> float:
        """The store's own clock now (epoch seconds): one tiny write, timestamped by the store."""
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
            raw = blob.download_as_bytes()
        except gexc.NotFound:
            return None
        if not (blob.md5_hash or blob.crc32c):
            # A media download always carries X-Goog-Hash (checked by the client); without it the
            # answer was not the object's bytes (seen from the emulator under load): try again later.
            raise storage_io.StorageError(f"{self.uri(key)}: the read returned no checksum")
        data: JsonDict = json.loads(raw)
        return data

    def update(self, key: str, fn: Callable[[JsonDict | None], JsonDict]) -> JsonDict:
        return storage_io.cas_update_json(self.uri(key), fn)

    def create(self, key: str, doc: JsonDict) -> bool:
        from google.api_core import exceptions as gexc

        blob = storage_io.storage_client().bucket(self.bucket).blob(self.prefix + key)
        try:
            blob.upload_from_string(_encode(doc), content_type="application/json", if_generation_match=0)
        except gexc.PreconditionFailed:
            return False
        return True

    def names(self, prefix: str, start: str = "") -> list[str]:
        blobs = storage_io.storage_client().list_blobs(
            self.bucket, prefix=self.prefix + prefix, start_offset=(self.prefix + start) if start else None
        )
        return sorted(b.name[len(self.prefix) :] for b in blobs)

    def server_time(self) -> float:
        # Several objects: Cloud Storage allows about one write per second to one object.
        blob = storage_io.storage_client().bucket(self.bucket).blob(f"{self.prefix}clock/{os.getpid() % 16}")
        blob.upload_from_string(b"{}", content_type="application/json")
        return float(blob.updated.timestamp())


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

    def create(self, key: str, doc: JsonDict) -> bool:
        path = self.directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(_encode(doc))
        try:
            os.link(tmp, path)  # atomic, and fails when the key exists
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True

    def names(self, prefix: str, start: str = "") -> list[str]:
        base = self.directory / prefix
        folder = base if prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return []
        found = (
            str(p.relative_to(self.directory))
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".lock")
        )
        return sorted(k for k in found if k.startswith(prefix) and k >= start)

    def server_time(self) -> float:
        # The file system's clock: the same for every process of this machine.
        path = self.directory / "clock" / str(os.getpid() % 16)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}")
        return path.stat().st_mtime


def _encode(doc: JsonDict) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True).encode()
