"""The four CloudEvent entry points. Deployed as ``main.py`` at the root of the bundle.

Each is thin: it hands the CloudEvent to the instance's runtime, which parses, routes, launches
and logs one structured line (see ``functions.runtime`` for the error policy). Nothing heavy is
imported here: no aiplatform, no kfp; clients are created on first use.
"""

from __future__ import annotations

from typing import Any

import functions_framework

from functions.runtime import runtime

_STORAGE = frozenset({"storage.object.finalized"})
_ALERTS = frozenset({"monitoring.alert"})
_REGISTRY = frozenset({"model_registry", "audit.log"})
_RUN_REQUESTS = frozenset({"run.request"})


def _handle(entry_point: str, accepts: frozenset[str], cloud_event: Any) -> None:
    runtime().handle(entry_point, accepts, cloud_event.get_attributes(), cloud_event.get_data())


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
