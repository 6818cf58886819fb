"""The four CloudEvent entry points. Deployed as ``main.py`` at the root of the bundle.

Each is thin: it hands the CloudEvent to the instance's runtime, which parses, routes, launches
and logs one structured line (see ``functions.runtime`` for the error policy). Nothing heavy is
imported here: no aiplatform, no kfp; clients are created on first use.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from functions.runtime import OUTCOME_HEADER, outcome_header_value, runtime

_STORAGE = frozenset({"storage.object.finalized"})
_ALERTS = frozenset({"monitoring.alert"})
_REGISTRY = frozenset({"model_registry", "audit.log"})
_RUN_REQUESTS = frozenset({"run.request"})


def _handle(entry_point: str, accepts: frozenset[str], cloud_event: Any) -> None:
    outcome = runtime().handle(entry_point, accepts, cloud_event.get_attributes(), cloud_event.get_data())
    summary = outcome_header_value(outcome.summary())

    @flask.after_this_request
    def _tell(response: flask.Response) -> flask.Response:
        response.headers[OUTCOME_HEADER] = summary
        return response


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


@functions_framework.errorhandler(BadRequest)
@functions_framework.errorhandler(UnsupportedMediaType)
def not_a_cloud_event(error: Exception) -> tuple[str, int, dict[str, str]]:
    """The framework rejects requests that are not CloudEvents (missing ce-id, bad JSON, empty body)
    before our code runs. Eventarc redelivers every non-2xx answer, so a 4xx would be retried for
    days: record a dead letter with the clear reason and acknowledge instead."""
    request = flask.request
    reason = runtime().reject_request(
        flask.current_app.name, dict(request.headers), request.get_data(), request.path
    )
    outcome = outcome_header_value(f"dead-lettered: {reason}")
    return f"rejected (recorded as a dead letter): {reason}\n", 200, {OUTCOME_HEADER: outcome}
