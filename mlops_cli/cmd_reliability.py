"""``mlops-events reliability``: the command lives in the ``mlops_cli.reliability`` package."""

from __future__ import annotations

from mlops_cli.reliability import register, run, stub_templates
from mlops_cli.reliability.events import Delivery, incident, pubsub_event, redeliver, storage_event

__all__ = [
    "Delivery",
    "incident",
    "pubsub_event",
    "redeliver",
    "register",
    "run",
    "storage_event",
    "stub_templates",
]
