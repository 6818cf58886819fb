"""One KFP pipeline per module; ``pipeline_func(name)`` imports the one asked for (kfp is heavy)."""

from __future__ import annotations

import importlib
from typing import Any

from pipelines.catalog import PIPELINES


def pipeline_func(name: str) -> Any:
    """The ``@dsl.pipeline`` object of catalog pipeline ``name``."""
    if name not in PIPELINES:
        raise KeyError(f"unknown pipeline {name!r} (known: {', '.join(PIPELINES)})")
    return importlib.import_module(f"pipelines.definitions.{name}").pipeline


def vertex_name(name: str) -> str:
    """Vertex pipeline names allow lowercase letters, digits and dashes only."""
    return name.replace("_", "-")
