"""The four CloudEvent entry points. Deployed as ``main.py`` at the root of the bundle.

Each is thin: it hands the CloudEvent to the instance's runtime, which parses, routes, launches
and logs one structured line (see ``functions.runtime`` for the error policy). Nothing heavy is
imported here: no aiplatform, no kfp; clients are created on first use.

Errors raised before our function runs get the same policy as those inside it. functions-framework
reads the request first (``cloudevents.http.from_http``, then its background-event conversion),
and what that raises -- a 400 for a missing ``ce-id``, but also ``RecursionError`` for deeply
nested JSON, ``UnicodeDecodeError`` for a structured body that is not UTF-8, ``TypeError`` for a
batch -- would be a 400 or a 500, redelivered for days. ``not_read`` is registered for every
exception: one that our function raised is, by the runtime's policy, one a retry can fix (500,
as the framework answers); anything else was raised while reading a request, and the same bytes
fail the same way next time: recorded as a dead letter, answered 200. What gunicorn rejects before
the app (a duplicated ``Content-Type``) is handled in ``functions.protocol_errors``.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from functions import protocol_errors
from functions.runtime import runtime

_STORAGE = frozenset({"storage.object.finalized"})
_ALERTS = frozenset({"monitoring.alert"})
_REGISTRY = frozenset({"model_registry", "audit.log"})
_RUN_REQUESTS = frozenset({"run.request"})
_ENTERED = "mlops_events_entered"


def _handle(entry_point: str, accepts: frozenset[str], cloud_event: Any) -> None:
    body = None
    if flask.has_request_context():
        setattr(flask.g, _ENTERED, True)
        body = flask.request.get_data()
    runtime().handle(entry_point, accepts, cloud_event.get_attributes(), cloud_event.get_data(), body=body)


@functions_framework.cloud_event
def on_new_data(cloud_event: Any) -> None:
    """Storage object finalized -> training (or whatever the rules say)."""
    _handle("on_new_data", _STORAGE, cloud_event)


@functions_framework.cloud_event
def on_monitoring_alert(cloud_event: Any) -> None:
    """Monitoring alert on Pub/Sub (Cloud Monitoring, Model Monitoring, our drift alert) -> retraining."""
    _handle("on_monitoring_alert", _ALERTS, cloud_event)


@functions_framework.cloud_event
def on_model_registry_event(cloud_event: Any) -> None:
    """Vertex AI Model Registry audit-log event (Eventarc) -> evaluation or deployment."""
    _handle("on_model_registry_event", _REGISTRY, cloud_event)


@functions_framework.cloud_event
def on_run_request(cloud_event: Any) -> None:
    """Run request on Pub/Sub -> the named pipeline."""
    _handle("on_run_request", _RUN_REQUESTS, cloud_event)


@functions_framework.errorhandler(Exception)
def not_read(error: Exception) -> Any:
    """Every exception that reaches the framework (see the module docstring)."""
    request = flask.request
    if flask.g.get(_ENTERED):
        # Our function raised: the runtime lets only what a retry can fix escape.
        return error if isinstance(error, HTTPException) else functions_framework.crash_handler(error)
    if isinstance(error, HTTPException) and request.method != "POST":
        return error  # GET /: a health check or a browser, not a delivery
    reason = runtime().reject_request(
        flask.current_app.name, dict(request.headers), request.get_data(), request.path, error=error
    )
    return f"rejected (recorded as a dead letter): {reason}\n", 200


def _record_protocol_error(entry_point: str, headers: dict[str, str], path: str, reason: str) -> str:
    return runtime().reject_request(entry_point, headers, b"", path, reason=reason)


protocol_errors.install(_record_protocol_error)
