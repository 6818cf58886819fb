"""An object's metadata (live generation, creation time) in one GET of the Cloud Storage JSON API.

The ordering guard reads the live generation of the object of every storage event, and debounce
reads a marker's creation time. google-cloud-storage costs ~0.2 s to import in a fresh process, on
the first event of every instance, for what is one ``objects.get`` request
(https://cloud.google.com/storage/docs/json_api/v1/objects/get). So it is sent on the session the
Vertex launcher already holds (authorized for ``cloud-platform``, which covers Cloud Storage);
``requests`` and ``google.auth`` are loaded for the launch anyway.

Under ``STORAGE_EMULATOR_HOST`` (fake-gcs-server) the request goes there, unauthenticated, as the
storage client does. Errors are classified as the client's were (``functions.failures``): 404 is
"no such object"; 401/403, 408, 429, 5xx and connection errors are transient (``StorageError``);
any other answer is permanent (``ObjectReadError``).
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from pipelines.launch.base import PermanentLaunchError
from pipelines.storage_io import StorageError

STORAGE_API = "https://storage.googleapis.com"
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
# The answers a retry can fix (the storage client's own retry covered these, plus 401/403: a
# grant not propagated yet, transient in functions.failures too).
_TRANSIENT_STATUS = frozenset({401, 403, 408, 429, 500, 502, 503, 504})
_ATTEMPTS = 3  # then the platform's redelivery is the retry
_TIMEOUT_S = 10.0

Session = Any  # a requests.Session (an AuthorizedSession outside the emulator)


class ObjectReadError(RuntimeError):
    """Cloud Storage refused to describe an object for a reason a retry cannot fix (a bad name...)."""


def emulator_url() -> str | None:
    """The storage emulator's base URL, None for Cloud Storage (the variable the client honours)."""
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host:
        return None
    return (host if "://" in host else f"http://{host}").rstrip("/")


class ObjectReader:
    """Reads object metadata; ``shared`` returns the launcher's authorized session (or None when it
    has none to lend, e.g. a plain-HTTP Vertex AI emulator), asked once."""

    def __init__(self, shared: Callable[[], Session | None] | None = None) -> None:
        self._shared = shared
        self._cloud: Session | None = None
        self._emulator: Session | None = None
        self._lock = threading.Lock()

    def generation(self, bucket: str, name: str) -> int | None:
        """The live generation of ``gs://bucket/name``, None when it does not exist."""
        found = self.metadata(bucket, name, "generation")
        return int(found["generation"]) if found is not None else None

    def created(self, bucket: str, name: str) -> str | None:
        """When ``gs://bucket/name`` was created (ISO 8601, "" if not said), None when it does not exist."""
        found = self.metadata(bucket, name, "timeCreated")
        if found is None:
            return None
        return _iso(str(found.get("timeCreated") or ""))

    def metadata(self, bucket: str, name: str, fields: str) -> dict[str, Any] | None:
        """The object resource (only ``fields``), None on 404. Raises StorageError (transient) or
        ObjectReadError (permanent)."""
        import requests

        base = emulator_url()
        url = f"{base or STORAGE_API}/storage/v1/b/{_quote(bucket)}/o/{_quote(name)}"
        session = self._session(emulator=base is not None)
        uri = f"gs://{bucket}/{name}"
        for attempt in range(_ATTEMPTS):
            last = attempt == _ATTEMPTS - 1
            try:
                response = session.get(url, params={"fields": fields}, timeout=_TIMEOUT_S)
            except (requests.Timeout, requests.ConnectionError) as exc:
                if last:
                    raise StorageError(f"Cloud Storage did not answer reading {uri}: {exc}") from exc
            else:
                status = response.status_code
                if status == 200:
                    found: dict[str, Any] = response.json()
                    return found
                if status == 404:
                    return None
                if status not in _TRANSIENT_STATUS:
                    raise ObjectReadError(
                        f"Cloud Storage answered {status} reading {uri}: {_message(response)}"
                    )
                if last:
                    raise StorageError(f"Cloud Storage answered {status} reading {uri}: {_message(response)}")
            time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _session(self, emulator: bool) -> Session:
        with self._lock:
            if emulator:  # never send credentials to an emulator
                if self._emulator is None:
                    import requests

                    self._emulator = requests.Session()
                return self._emulator
            if self._cloud is None:
                self._cloud = (self._shared() if self._shared else None) or _authorized_session()
            return self._cloud


def launcher_session(launcher: Callable[[], Any]) -> Session | None:
    """The launcher's authorized session, None when it has none to lend (dry-run, a plain-HTTP emulator,
    or no launcher configured: the launch itself says so)."""
    try:
        lend = getattr(launcher(), "authorized_session", None)
    except PermanentLaunchError:
        return None
    return lend() if lend is not None else None


def _authorized_session() -> Session:
    # No launcher session to share (dry-run, or a plain-HTTP emulator): a read-only one of our own.
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=[READ_ONLY_SCOPE])
    return AuthorizedSession(credentials)


def _quote(part: str) -> str:
    # Object names may hold "/", "#", "?", spaces...: one path segment, everything escaped.
    return urllib.parse.quote(part, safe="")


def _iso(rfc3339: str) -> str:
    """``2024-05-01T10:00:00.123Z`` as ``datetime.isoformat()`` writes it (what the client returned)."""
    if not rfc3339:
        return ""
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).isoformat()


def _message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return (response.text or "")[:300]
