"""Which failures a retry can fix (answer 5xx, the platform redelivers) and which it cannot.

Eventarc and Pub/Sub redeliver every non-2xx answer, so the question decides between an endless
retry loop and a dead-letter record. A retry can fix: our own launcher's transient errors
(including the guards' "later"), the state bucket or Pub/Sub being slow, overloaded, unreachable
or not yet granted to us (429, 5xx, 401/403, timeouts, connection errors, a bucket that does not
exist yet), and a compare-and-swap that kept conflicting. Everything else -- a bug, a value no code
path expected, a 4xx about the event's own content -- fails the same way on every redelivery:
permanent.

Client libraries are looked up in ``sys.modules`` only: if a library was never imported, none of
its exceptions can have been raised, and the request path imports nothing heavy for this.
"""

from __future__ import annotations

import sys

from pipelines.launch.base import PermanentLaunchError, TransientLaunchError
from pipelines.storage_io import StorageError


def is_transient(exc: BaseException) -> bool:
    """True when the same event may succeed if delivered again later."""
    if isinstance(exc, PermanentLaunchError):
        return False
    if isinstance(exc, TransientLaunchError | StorageError | MemoryError):
        return True  # StorageError: a missing bucket or a CAS that kept conflicting
    if isinstance(exc, OSError):  # connections, timeouts, files; requests' errors are OSErrors too
        return True
    api = sys.modules.get("google.api_core.exceptions")
    if api is not None and isinstance(
        exc, api.TooManyRequests | api.ServerError | api.RetryError | api.Unauthorized | api.Forbidden
    ):
        return True
    media = sys.modules.get("google.resumable_media.common")
    storage = sys.modules.get("google.cloud.storage.exceptions")  # its own DataCorruption since 3.x
    for module in (media, storage):
        if module is not None and isinstance(exc, module.DataCorruption):
            return True  # the bytes received differ from their checksum: read again
    if media is not None and isinstance(exc, media.InvalidResponse):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return not (isinstance(status, int) and 400 <= status < 500 and status not in (408, 429))
    auth = sys.modules.get("google.auth.exceptions")
    return auth is not None and isinstance(exc, auth.TransportError | auth.RefreshError)


def describe(exc: BaseException, limit: int = 500) -> str:
    """``Type: message``, bounded (the message of a RecursionError or a huge value can be long)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
