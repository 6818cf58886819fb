"""The floor: an empty CloudEvent function. Its ready-to-serve time is what the interpreter,
functions-framework, Flask and gunicorn cost on this machine before any code of ours runs; the
bench prints ours beside it, so a target in seconds can be read against what the machine allows."""

from typing import Any

import functions_framework


@functions_framework.cloud_event
def on_new_data(cloud_event: Any) -> None:
    return None
