"""Pieces shared by the pipeline definitions."""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from typing import Any


def fresh(*tasks: Any) -> Any:
    """No caching: the same data URI can hold new data, and registering/deploying is an effect."""
    for task in tasks:
        task.set_caching_options(False)
    return tasks[0] if len(tasks) == 1 else tasks


def inputs(scope: dict, *, drop: tuple = ()) -> dict:
    """A pipeline's own inputs as keyword arguments for its task: call with ``locals()`` first
    thing in the pipeline function, so the parameter list is written once (in the signature)."""
    return {name: value for name, value in scope.items() if name not in drop}


def on_machine(task: Any, cpu: Any, memory: Any) -> Any:
    """Ask Vertex for a machine with at least ``cpu`` vCPUs and ``memory`` (e.g. "16G") for this
    task; the values may be pipeline parameters (a model's ``machine:`` setting). kfp.local ignores them."""
    return task.set_cpu_limit(cpu).set_memory_limit(memory)
