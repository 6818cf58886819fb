"""The local model registry: one JSON document per model at ``<root>/models/<name>.json``.

``root`` is ``gs://<registry bucket>`` on the storage emulator or a local directory. Every change
is one compare-and-swap of that document (``storage_io.cas_update_json``), so concurrent writers
can neither lose a version nor leave an alias on two versions: aliases are a single map
``alias -> version``. Version ids are "1", "2", ... in registration order.

Document::

    {"model": "iris", "resource_name": "projects/P/locations/L/models/iris", "created_at": "...",
     "next_version": 3, "aliases": {"default": "2", "champion": "1", "challenger": "2"},
     "versions": {"1": {"artifact_uri": "...", "labels": {...}, "metrics": {...},
                        "description": "...", "created_at": "..."}, ...}}

Each change emits the audit-log CloudEvent Vertex would (UploadModel, MergeVersionAliases).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pipelines import storage_io
from pipelines.ports import ModelVersion
from pipelines.registry import DEFAULT_ALIAS, RegistryError, check_alias, check_model_id
from pipelines.registry.audit_events import (
    EventSink,
    merge_version_aliases_event,
    model_resource,
    upload_model_event,
)

log = logging.getLogger(__name__)


class LocalModelRegistry:
    def __init__(
        self,
        root: str,
        *,
        project: str = "local-project",
        location: str = "us-central1",
        principal: str | None = None,
        sink: EventSink | None = None,
    ) -> None:
        self.root = root.rstrip("/")
        self.project = project
        self.location = location
        self.principal = principal or f"local-pipelines@{project}.iam.gserviceaccount.com"
        self.sink = sink if sink is not None else EventSink(None, None)

    def _doc_uri(self, model_name: str) -> str:
        return storage_io.join(self.root, "models", f"{check_model_id(model_name)}.json")

    def _read(self, model_name: str) -> dict[str, Any] | None:
        uri = self._doc_uri(model_name)
        if not storage_io.exists(uri):
            return None
        doc: dict[str, Any] = storage_io.read_json(uri)
        return doc

    # --- ModelRegistry -----------------------------------------------------------------------

    def register(
        self,
        model_name: str,
        artifact_uri: str,
        *,
        labels: Mapping[str, str],
        metrics: Mapping[str, float],
        aliases: Sequence[str] = (),
        description: str = "",
    ) -> ModelVersion:
        for alias in aliases:
            check_alias(alias)
        now = _now()
        assigned: dict[str, Any] = {}

        def add_version(doc: dict[str, Any] | None) -> dict[str, Any]:
            assigned["parent_existed"] = doc is not None
            doc = doc or {
                "model": model_name,
                "resource_name": model_resource(self.project, self.location, model_name),
                "created_at": now,
                "next_version": 1,
                "aliases": {},
                "versions": {},
            }
            version = str(doc["next_version"])
            doc["next_version"] += 1
            doc["versions"][version] = {
                "artifact_uri": artifact_uri,
                "labels": {str(k): str(v) for k, v in labels.items()},
                "metrics": {str(k): float(v) for k, v in metrics.items()},
                "description": description,
                "created_at": now,
            }
            # As on Vertex, a new version becomes the default one; its aliases move to it.
            for alias in (DEFAULT_ALIAS, *aliases):
                doc["aliases"][alias] = version
            assigned["version"] = version
            return doc

        doc = storage_io.cas_update_json(self._doc_uri(model_name), add_version)
        result = _version(doc, assigned["version"])
        self.sink.emit(
            upload_model_event(
                project=self.project,
                location=self.location,
                model_id=model_name,
                version=result.version,
                artifact_uri=artifact_uri,
                labels=result.labels,
                aliases=list(aliases),
                description=description,
                principal=self.principal,
                parent_exists=bool(assigned["parent_existed"]),
            )
        )
        log.info("registered %s version %s aliases %s", model_name, result.version, list(result.aliases))
        return result

    def get(self, model_name: str, version_or_alias: str) -> ModelVersion | None:
        doc = self._read(model_name)
        if doc is None:
            return None
        version = (
            version_or_alias if version_or_alias in doc["versions"] else doc["aliases"].get(version_or_alias)
        )
        return _version(doc, version) if version is not None else None

    def list_versions(self, model_name: str) -> list[ModelVersion]:
        doc = self._read(model_name)
        if doc is None:
            return []
        return [_version(doc, v) for v in sorted(doc["versions"], key=int)]

    def set_alias(self, model_name: str, version: str, alias: str) -> ModelVersion:
        check_alias(alias)
        changed: dict[str, bool] = {}

        def move_alias(doc: dict[str, Any] | None) -> dict[str, Any]:
            if doc is None:
                raise RegistryError(f"model {model_name!r} is not in the registry at {self.root}")
            if version not in doc["versions"]:
                raise RegistryError(
                    f"model {model_name!r} has no version {version!r} (versions: {sorted(doc['versions'], key=int)})"
                )
            changed["value"] = doc["aliases"].get(alias) != version
            doc["aliases"][alias] = version  # one map: the alias leaves the version that had it
            return doc

        doc = storage_io.cas_update_json(self._doc_uri(model_name), move_alias)
        result = _version(doc, version)
        # Setting an alias where it already is changes nothing and is not announced.
        if changed["value"]:
            self.sink.emit(
                merge_version_aliases_event(
                    project=self.project,
                    location=self.location,
                    model_id=model_name,
                    version=version,
                    version_aliases=[alias],
                    principal=self.principal,
                )
            )
            log.info("alias %s of %s moved to version %s", alias, model_name, version)
        return result

    # --- beyond the port ---------------------------------------------------------------------

    def list_models(self) -> list[str]:
        prefix = storage_io.join(self.root, "models") + "/"
        names = []
        for uri in storage_io.list_uris(prefix):
            base = uri.rsplit("/", 1)[-1]
            if base.endswith(".json"):
                names.append(base[: -len(".json")])
        return sorted(names)

    def aliases(self, model_name: str) -> dict[str, str]:
        doc = self._read(model_name)
        return dict(doc["aliases"]) if doc else {}


def _version(doc: Mapping[str, Any], version: str) -> ModelVersion:
    entry = doc["versions"][version]
    aliases = tuple(sorted(a for a, v in doc["aliases"].items() if v == version))
    return ModelVersion(
        model_name=doc["model"],
        version=version,
        artifact_uri=entry["artifact_uri"],
        aliases=aliases,
        labels=dict(entry["labels"]),
        metrics=dict(entry["metrics"]),
        resource_name=f"{doc['resource_name']}@{version}",
        created_at=entry["created_at"],
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
