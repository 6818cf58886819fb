"""The Launcher interface, its result and its two failure kinds.

A launcher submits a RunRequest's precompiled template. The job id is the idempotency key: a
launcher answers ``already_exists`` (success) when a job with that id was already submitted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

from events.catalog import Catalog
from events.decision import RunRequest
from pipelines import parsed


class LaunchError(Exception):
    """Base of launcher failures."""


class TransientLaunchError(LaunchError):
    """Worth retrying: quota (429), server errors (5xx), timeouts, connection failures."""


class PermanentLaunchError(LaunchError, ValueError):
    """Will fail again however often it is retried: a rejected request, a missing template."""


@dataclass(frozen=True)
class LaunchResult:
    job_id: str
    # already_exists: a previous delivery created it (success); exists_failed: it exists but FAILED
    # or was CANCELLED, so this event did not get its run: `mlops-events rerun JOB_ID` starts another.
    status: Literal["created", "already_exists", "exists_failed", "dry_run"]
    job_name: str  # the full resource name, or "(dry run)"
    detail: Mapping[str, Any] = field(default_factory=dict)


class Launcher(Protocol):
    name: str

    def launch(self, request: RunRequest) -> LaunchResult: ...


@dataclass(frozen=True)
class Templates:
    """The compiled templates directory: ``<pipeline>.yaml`` + ``manifest.json``."""

    directory: Path

    @cached_property
    def manifest(self) -> dict[str, Any]:
        path = self.directory / "manifest.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"pipelines": {}}
        return data

    @cached_property
    def catalog(self) -> Catalog:
        """The routable pipelines, as the templates declare them (empty without a manifest)."""
        return Catalog.from_manifest(self.manifest)

    def digests(self) -> dict[str, str]:
        return {name: str(entry["sha256"]) for name, entry in self.manifest.get("pipelines", {}).items()}

    def path(self, pipeline: str) -> Path:
        entry = self.manifest.get("pipelines", {}).get(pipeline)
        path = self.directory / (entry["file"] if entry else f"{pipeline}.yaml")
        if not path.is_file():
            raise PermanentLaunchError(
                f"no compiled template for pipeline {pipeline!r} at {path} (run `mlops-events compile`)"
            )
        return path

    def load(self, pipeline: str) -> dict[str, Any]:
        """The pipeline spec as a dict (the first YAML document of the compiled file)."""
        return load_spec(self.path(pipeline))


def load_spec(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    copy = parsed.read(path, data)  # the bundle's pre-parsed copy: no PyYAML on a cold start
    if isinstance(copy, dict):
        return copy
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for d in yaml.load_all(data.decode("utf-8"), Loader=loader) if d]
    if not docs or not isinstance(docs[0], dict):
        raise PermanentLaunchError(f"{path} is not a compiled pipeline spec")
    spec: dict[str, Any] = docs[0]
    return spec


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
