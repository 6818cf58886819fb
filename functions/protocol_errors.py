"""Requests the HTTP server rejects before the app sees them: recorded and acknowledged too.

functions-framework serves the app with gunicorn. Gunicorn answers some requests itself, before
any WSGI code runs: a header that may appear once sent twice (``Content-Type``, RFC 9110 5.3), an
invalid header name or value, an oversized request line, a bad chunk. It answers 400 (or 414, 431,
501), and Eventarc and Pub/Sub redeliver every non-2xx answer: the same bytes, the same 400, for
as long as the retry policy lasts, and no record anywhere. Those are permanent errors like any
other, so they get the same policy: a dead-letter record (with what gunicorn had read: the method,
the path, the headers before the faulty one; the body was never read), then 200. The connection
is closed afterwards, as gunicorn does after every such error.

Gunicorn has no hook for this, so ``install`` wraps ``Worker.handle_error`` (called by every
worker class for exceptions raised while reading a request). Errors of the response (the app's
own fault) and everything that is not a request-parsing error keep gunicorn's answer. When the
record cannot be written the answer is 503, so the platform redelivers rather than losing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

Recorder = Callable[[str, dict[str, str], str, str], str]  # entry point, headers, path, reason -> reason


def install(record: Recorder) -> bool:
    """Wrap gunicorn's error answer (once per process); False when gunicorn is not installed."""
    try:
        from gunicorn import util
        from gunicorn.http import errors
        from gunicorn.workers import base
    except ImportError:
        return False
    if getattr(base.Worker.handle_error, "records_dead_letters", False):
        return True
    original = base.Worker.handle_error
    app_errors = tuple(
        getattr(errors, name)
        for name in ("InvalidResponseHeader", "InvalidResponseHeaderName")
        if hasattr(errors, name)
    )

    def handle_error(self: Any, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if not isinstance(exc, errors.ParseException) or isinstance(exc, app_errors):
            return original(self, req, client, addr, exc)
        req = req or getattr(exc, "req", None)
        entry_point = str(getattr(self.wsgi, "name", "") or os.environ.get("FUNCTION_TARGET") or "unknown")
        headers = {str(k).lower(): str(v) for k, v in (getattr(req, "headers", None) or [])}
        path = str(getattr(req, "path", "") or "")
        reason = (
            f"the HTTP server rejected the request before the function ran "
            f"({type(exc).__name__}: {str(exc)[:300]})"
        )
        try:
            reason = record(entry_point, headers, path, reason)
        except Exception:
            self.log.exception("dead letter of a rejected request not recorded")
            util.write_error(client, 503, "Service Unavailable", "dead letter not recorded; retry")
            return None
        answer = f"rejected (recorded as a dead letter): {reason}"
        util.write_error(client, 200, "OK", answer.encode("ascii", "backslashreplace").decode("ascii"))
        return None

    handle_error.records_dead_letters = True  # type: ignore[attr-defined]
    base.Worker.handle_error = handle_error
    return True
