"""Read and write objects by URI: ``gs://bucket/name`` through google-cloud-storage, local paths
(and ``file://``) directly.

Under ``STORAGE_EMULATOR_HOST`` (fake-gcs-server) the client uses anonymous credentials and the
project from ``GOOGLE_CLOUD_PROJECT`` (default ``local-project``). google.cloud.storage is imported
on first use only: this module is cheap to import.

``cas_update_json`` is the compare-and-swap used for shared state (local registry, endpoint
traffic): a read-modify-write with a generation precondition, retried on conflict.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

JsonDict = dict[str, Any]


class StorageError(RuntimeError):
    """A storage operation failed for a reason the message names (missing bucket, no object...)."""


class ConcurrentUpdateError(StorageError):
    """``cas_update_json`` lost the race ``retries`` times in a row."""


def is_gcs(uri: str) -> bool:
    return uri.startswith("gs://")


def split_gcs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``."""
    if not is_gcs(uri):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket:
        raise ValueError(f"gs:// URI without a bucket: {uri!r}")
    return bucket, name


def local_path(uri: str) -> Path:
    """The filesystem path of a local URI (plain path or ``file://``)."""
    if is_gcs(uri):
        raise ValueError(f"not a local path: {uri!r}")
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri)


def join(base: str, *parts: str) -> str:
    """Join URI path segments with ``/`` (works for gs:// and local paths)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


# --- client ----------------------------------------------------------------------------------

_clients: dict[tuple[str | None, str | None], Any] = {}
_clients_lock = threading.Lock()


def storage_client() -> Any:
    """A google.cloud.storage Client for the current environment (cached per emulator host/project)."""
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    key = (emulator, project)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import google.cloud.storage as storage

            if emulator:
                from google.auth.credentials import AnonymousCredentials

                client = storage.Client(
                    project=project or "local-project",
                    credentials=AnonymousCredentials(),
                )
            else:
                client = storage.Client(project=project)
            _clients[key] = client
        return client


def _blob(uri: str) -> Any:
    bucket, name = split_gcs(uri)
    if not name:
        raise ValueError(f"gs:// URI names a bucket, not an object: {uri!r}")
    return storage_client().bucket(bucket).blob(name)


@contextlib.contextmanager
def _gcs_errors(uri: str) -> Iterator[None]:
    """Turn a missing bucket or object into a StorageError that names it."""
    from google.api_core import exceptions as gexc

    try:
        yield
    except gexc.NotFound as exc:
        bucket, _ = split_gcs(uri)
        where = os.environ.get("STORAGE_EMULATOR_HOST") or "Cloud Storage"
        if not _bucket_exists(bucket):
            raise StorageError(
                f"bucket {bucket!r} does not exist on {where} (create it first, e.g. with `mlops-events up`)"
            ) from exc
        raise StorageError(f"no such object: {uri}") from exc


def _bucket_exists(bucket: str) -> bool:
    try:
        return storage_client().lookup_bucket(bucket) is not None
    except Exception:
        return False


def ensure_bucket(name: str) -> None:
    """Create bucket ``name`` unless it exists (for the local stack and tests)."""
    from google.api_core import exceptions as gexc

    client = storage_client()
    if client.lookup_bucket(name) is None:
        with contextlib.suppress(gexc.Conflict):
            client.create_bucket(name)


# --- plain I/O -------------------------------------------------------------------------------


def read_bytes(uri: str) -> bytes:
    if is_gcs(uri):
        with _gcs_errors(uri):
            data: bytes = _blob(uri).download_as_bytes()
            return data
    try:
        return local_path(uri).read_bytes()
    except FileNotFoundError as exc:
        raise StorageError(f"no such file: {uri}") from exc


def write_bytes(
    uri: str, data: bytes, content_type: str | None = None, metadata: Mapping[str, str] | None = None
) -> None:
    """Write one object. ``metadata`` is the object's custom metadata on gs:// (a local file has
    none: it is dropped there)."""
    if is_gcs(uri):
        with _gcs_errors(uri):
            blob = _blob(uri)
            if metadata:
                blob.metadata = dict(metadata)
            blob.upload_from_string(data, content_type=content_type or "application/octet-stream")
        return
    _atomic_write(local_path(uri), data)


def read_text(uri: str, encoding: str = "utf-8") -> str:
    return read_bytes(uri).decode(encoding)


def write_text(uri: str, text: str, content_type: str | None = None) -> None:
    write_bytes(uri, text.encode("utf-8"), content_type or "text/plain; charset=utf-8")


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def write_json(uri: str, value: Any) -> None:
    write_bytes(uri, json.dumps(value, indent=2, sort_keys=True).encode(), "application/json")


def exists(uri: str) -> bool:
    if is_gcs(uri):
        bucket, name = split_gcs(uri)
        if not name:
            return _bucket_exists(bucket)
        return bool(_blob(uri).exists())
    return local_path(uri).exists()


def list_uris(prefix_uri: str) -> list[str]:
    """Every object under a prefix, sorted. A local directory lists its files recursively; any
    other local prefix lists the files whose path starts with it (like a GCS prefix)."""
    if is_gcs(prefix_uri):
        bucket, prefix = split_gcs(prefix_uri)
        with _gcs_errors(prefix_uri):
            blobs = storage_client().list_blobs(bucket, prefix=prefix or None)
            return sorted(f"gs://{bucket}/{b.name}" for b in blobs)
    path = local_path(prefix_uri)
    if path.is_dir():
        files = (p for p in path.rglob("*") if p.is_file())
    else:
        parent = path.parent
        files = (p for p in parent.rglob("*") if p.is_file() and str(p).startswith(str(path)))
    return sorted(str(p) for p in files if not p.name.endswith(".lock"))


def download_to(uri: str, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_gcs(uri):
        with _gcs_errors(uri):
            _blob(uri).download_to_filename(str(path))
    else:
        path.write_bytes(read_bytes(uri))
    return path


def upload_from(path: Path, uri: str) -> None:
    if is_gcs(uri):
        with _gcs_errors(uri):
            _blob(uri).upload_from_filename(str(path))
        return
    _atomic_write(local_path(uri), Path(path).read_bytes())


def delete(uri: str) -> None:
    """Delete one object; a missing one is not an error."""
    if is_gcs(uri):
        from google.api_core import exceptions as gexc

        with contextlib.suppress(gexc.NotFound):
            _blob(uri).delete()
        return
    local_path(uri).unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    # Readers never see a half-written file: write beside it, then rename over it.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- compare-and-swap ------------------------------------------------------------------------


def cas_update_json(uri: str, update: Callable[[JsonDict | None], JsonDict], retries: int = 20) -> JsonDict:
    """Read the JSON object at ``uri`` (None when absent), apply ``update``, write the result only if
    nobody wrote in between; on a conflict start again. Returns what was written.

    ``update`` may run several times: it must be a pure function of its argument. An exception it
    raises aborts the update and propagates.
    """
    if is_gcs(uri):
        return _cas_gcs(uri, update, retries)
    return _cas_local(local_path(uri), update)


def _cas_gcs(uri: str, update: Callable[[JsonDict | None], JsonDict], retries: int) -> JsonDict:
    from google.api_core import exceptions as gexc
    from google.cloud.storage.exceptions import DataCorruption

    bucket_name, name = split_gcs(uri)
    bucket = storage_client().bucket(bucket_name)
    for attempt in range(retries + 1):
        try:
            current = bucket.get_blob(name)
            if current is None:
                generation, before = 0, None  # 0: the object must not exist yet
            else:
                generation = int(current.generation)
                expected, raw = current.md5_hash, current.download_as_bytes(if_generation_match=generation)
                if expected and base64.b64encode(hashlib.md5(raw).digest()).decode() != expected:
                    raise gexc.PreconditionFailed(f"{uri}: the bytes read are not generation {generation}")
                before = json.loads(raw)
            after = update(before)
            data = json.dumps(after, indent=2, sort_keys=True).encode()
            bucket.blob(name).upload_from_string(
                data, content_type="application/json", if_generation_match=generation
            )
            return after
        except (gexc.PreconditionFailed, gexc.NotFound, DataCorruption) as exc:
            if isinstance(exc, gexc.NotFound) and not _bucket_exists(bucket_name):
                raise StorageError(f"bucket {bucket_name!r} does not exist (create it first)") from exc
            # Someone wrote (or deleted) between our read and our write: back off and retry. A read
            # whose bytes fail the client's checksum is the same race seen from the download (the
            # emulator can pair one generation's hash with the next one's bytes under concurrency).
            if attempt == retries:
                break
            time.sleep(min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.5))
    raise ConcurrentUpdateError(f"{uri}: still conflicting after {retries} retries of a conditional update")


_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _cas_local(path: Path, update: Callable[[JsonDict | None], JsonDict]) -> JsonDict:
    # An exclusive flock on a sibling lock file serialises writers across processes; the rename in
    # _atomic_write keeps unlocked readers safe.
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with _local_locks_guard:
        thread_lock = _local_locks.setdefault(str(lock_path.resolve()), threading.Lock())
    with thread_lock, lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            before = json.loads(path.read_bytes()) if path.exists() else None
            after = update(before)
            _atomic_write(path, json.dumps(after, indent=2, sort_keys=True).encode())
            return after
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
