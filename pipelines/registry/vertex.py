"""Vertex AI Model Registry: each model is a parent model, each registration a new version of it.

``register`` is one ``UploadModel`` (``parent_model``, ``version_aliases`` with ``default``, so the
new version becomes the default) through ``aiplatform_v1.ModelServiceClient``
(``pipelines.vertex_api``). A local model folder (kfp.local writes artifacts to local paths) is
first copied to Cloud Storage, under ``vertex_ai_auto_staging/`` of the staging bucket of
``VertexSettings``, as the SDK's ``Model.upload`` stages one. Every upload names the serving
container (``pipelines.serving.contract.serving_container_spec``): the project's image,
``mlops-events serve``, and where to write serving records.

Reads, alias moves and decisions are one call each on the same client, answering the full
``Model`` of a version.

Names are resolved the way Vertex resolves them: ``models/ID@VERSION`` and ``models/ID@ALIAS``
(``ID`` chosen at upload, or the numeric id Vertex generates for a model created in the
console), then a model whose display name is the name given (ListModels filter).

Metrics and the unsanitised labels travel in the version description as JSON (label values
cannot hold a URI or a decimal point); so do the decisions of people (approved / rejected, who,
why). The request is built by pure functions, tested without the service.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pipelines.ports import ModelVersion
from pipelines.registry import (
    ALIAS_RE,
    DEFAULT_ALIAS,
    MODEL_ID_RE,
    RegistryError,
    check_alias,
    check_model_id,
)
from pipelines.vertex_api import VertexSettings, client

MAX_LABELS: Final = 64
MAX_LABEL_LEN: Final = 63
NUMERIC_ID: Final = re.compile(r"^[1-9][0-9]{0,19}$")
DECISIONS: Final = ("approved", "rejected")
# The Vertex AI emulator's extension (stack/vertex/audit.py PRINCIPAL_HEADER): who makes the call,
# written as the audit log's principalEmail. The emulator has no credentials to tell it; Vertex
# takes the caller from the credentials, so the header is sent to an emulator only.
PRINCIPAL_HEADER: Final = "x-mlops-principal"
_LABEL_BAD = re.compile(r"[^a-z0-9_-]")


def _label_part(text: str) -> str:
    return _LABEL_BAD.sub("_", text.lower())[:MAX_LABEL_LEN]


def vertex_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels that Vertex accepts: keys and values lowercase ``[a-z0-9_-]``, at most 63 characters,
    keys starting with a letter, at most 64 labels (first ones in sorted key order)."""
    out: dict[str, str] = {}
    for key in sorted(labels):
        k = _label_part(key)
        if not k or not k[0].isalpha():
            k = ("l_" + k)[:MAX_LABEL_LEN]
        out.setdefault(k, _label_part(str(labels[key])))
        if len(out) == MAX_LABELS:
            break
    return out


def describe_version(
    description: str,
    metrics: Mapping[str, float],
    labels: Mapping[str, str],
    decisions: Sequence[Mapping[str, str]] = (),
) -> str:
    doc: dict[str, Any] = {"description": description, "metrics": dict(metrics), "labels": dict(labels)}
    if decisions:
        doc["decisions"] = [dict(d) for d in decisions]
    return json.dumps(doc, sort_keys=True)


def upload_request(
    *,
    parent: str,
    model_name: str,
    parent_model: str | None,
    display_name: str | None = None,
    artifact_uri: str,
    container_spec: Mapping[str, Any],
    labels: Mapping[str, str],
    metrics: Mapping[str, float],
    aliases: Sequence[str],
    description: str,
) -> dict[str, Any]:
    """The ``UploadModelRequest`` (REST JSON) of a new version of ``model_name``, the default one:
    under ``parent_model`` (its resource name, and ``display_name`` its display name, kept) when
    the model exists, else a new model whose id and display name are ``model_name``."""
    for alias in aliases:
        check_alias(alias)
    model: dict[str, Any] = {
        "displayName": display_name or model_name,
        "artifactUri": artifact_uri,
        "containerSpec": dict(container_spec),
        "labels": vertex_labels(labels),
        # Vertex makes a version the default when "default" is among its aliases at upload.
        "versionAliases": [a for a in aliases if a != DEFAULT_ALIAS] + [DEFAULT_ALIAS],
        "versionDescription": describe_version(description, metrics, labels),
    }
    request: dict[str, Any] = {"parent": parent, "model": model}
    if parent_model:
        request["parentModel"] = parent_model
    else:
        request["modelId"] = check_model_id(model_name)
    return request


def staging_uri(staging_bucket: str, now: datetime | None = None) -> str:
    """A new folder for a staged model: ``<bucket>/vertex_ai_auto_staging/<time>-<random>`` (the
    SDK's layout, plus a random part: two uploads in the same millisecond never share one)."""
    at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%S.%f")[:-3]
    return f"{staging_bucket.rstrip('/')}/vertex_ai_auto_staging/{at}-{uuid.uuid4().hex[:8]}"


def stage_folder(folder: Path, destination: str) -> str:
    """Copy every file under ``folder`` to ``destination`` (``gs://...``); its URI."""
    from pipelines import storage_io

    if not folder.is_dir():
        raise RegistryError(f"model artifact {folder} is not a folder")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        storage_io.upload_from(path, storage_io.join(destination, path.relative_to(folder).as_posix()))
    return destination


def parse_version_description(
    text: str | None,
) -> tuple[dict[str, str], dict[str, float], list[dict[str, str]], str]:
    """Labels, metrics, decisions and the free text from a description ``describe_version`` wrote;
    anything else (a description written in the console) is free text."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return {}, {}, [], text or ""
    if not isinstance(data, dict):
        return {}, {}, [], text or ""
    labels = {str(k): str(v) for k, v in (data.get("labels") or {}).items()}
    metrics = {str(k): float(v) for k, v in (data.get("metrics") or {}).items()}
    decisions = [{str(k): str(v) for k, v in d.items()} for d in data.get("decisions") or []]
    return labels, metrics, decisions, str(data.get("description") or "")


def check_ref(version_or_alias: str) -> str:
    if not (NUMERIC_ID.match(version_or_alias) or ALIAS_RE.match(version_or_alias)):
        raise RegistryError(f"{version_or_alias!r} is neither a version id nor an alias")
    return version_or_alias


def _is_id(model_name: str) -> bool:
    return bool(NUMERIC_ID.match(model_name) or MODEL_ID_RE.match(model_name))


class VertexModelRegistry:
    def __init__(
        self,
        vertex: VertexSettings,
        *,
        serving_image: str,
        records_uri: str | None = None,
        sample_rate: float | None = None,
    ) -> None:
        if not serving_image:
            raise RegistryError("the serving image is empty: every upload must name one")
        self.vertex = vertex
        self.serving_image = serving_image
        self.records_uri = records_uri
        self.sample_rate = sample_rate
        self._resources: dict[str, tuple[str, str]] = {}  # name as given -> (models/ID, display name)

    # --- plumbing -------------------------------------------------------------------------------

    def _client(self) -> Any:
        return client(self.vertex, "model")

    def _get(self, name: str) -> Any:
        from google.api_core import exceptions as gexc

        try:
            return self._client().get_model(name=name)
        except gexc.NotFound:
            return None

    def _model_resource(self, model_name: str) -> str | None:
        found = self._model(model_name)
        return found[0] if found else None

    def _model(self, model_name: str) -> tuple[str, str] | None:
        """``projects/N/locations/L/models/ID`` and display name of the model named
        ``model_name``: by id (chosen or numeric), else by display name; None when there is
        none. Several models with that display name (and none with that id) is an error."""
        if model_name in self._resources:
            return self._resources[model_name]
        found = None
        if _is_id(model_name):
            model = self._get(f"{self.vertex.parent}/models/{model_name}")
            found = (model.name, model.display_name) if model is not None else None
        if found is None and not NUMERIC_ID.match(model_name):
            escaped = model_name.replace("\\", "\\\\").replace('"', '\\"')
            models = list(
                self._client().list_models(
                    request={"parent": self.vertex.parent, "filter": f'display_name="{escaped}"'}
                )
            )
            names = sorted({m.name for m in models})
            if len(names) > 1:
                raise RegistryError(
                    f"{len(names)} models have the display name {model_name!r}: "
                    + ", ".join(n.rsplit("/", 1)[-1] for n in names)
                    + "; name one by its id"
                )
            found = (names[0], model_name) if names else None
        if found is not None:
            self._resources[model_name] = found
        return found

    def _container_spec(self, model_name: str) -> dict[str, Any]:
        from pipelines.serving.contract import DEFAULT_SAMPLE_RATE, serving_container_spec

        rate = DEFAULT_SAMPLE_RATE if self.sample_rate is None else self.sample_rate
        return serving_container_spec(
            self.serving_image, model_name=model_name, records_uri=self.records_uri, sample_rate=rate
        )

    # --- ModelRegistry --------------------------------------------------------------------------

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
        from google.api_core import exceptions as gexc

        if not artifact_uri.startswith("gs://"):
            if not self.vertex.staging_bucket:
                raise RegistryError(
                    f"model artifact {artifact_uri} is a local folder and there is no staging bucket "
                    "to copy it to: set MLOPS_STAGING_BUCKET (or PIPELINE_ROOT, whose bucket is the "
                    "default)"
                )
            artifact_uri = stage_folder(Path(artifact_uri), staging_uri(self.vertex.staging_bucket))
        parent = self._model(model_name)
        model_id = parent[0].rsplit("/", 1)[-1] if parent else check_model_id(model_name)

        def upload(parent_model: tuple[str, str] | None) -> Any:
            request = upload_request(
                parent=self.vertex.parent,
                model_name=model_id,
                parent_model=parent_model[0] if parent_model else None,
                display_name=parent_model[1] if parent_model else None,
                artifact_uri=artifact_uri,
                container_spec=self._container_spec(model_id),
                labels=labels,
                metrics=metrics,
                aliases=aliases,
                description=description,
            )
            from google.cloud.aiplatform_v1 import UploadModelRequest

            done = self._client().upload_model(request=UploadModelRequest.from_json(json.dumps(request)))
            return done.result()

        try:
            uploaded = upload(parent)
        except gexc.Conflict:
            # Another run created the model between our lookup and our upload: add a version to it.
            self._resources.pop(model_name, None)
            parent = self._model(model_name)
            if parent is None:
                raise
            uploaded = upload(parent)
        return self._to_version(
            self._client().get_model(name=f"{uploaded.model}@{uploaded.model_version_id}")
        )

    def get(self, model_name: str, version_or_alias: str) -> ModelVersion | None:
        ref = check_ref(version_or_alias)
        if _is_id(model_name) and model_name not in self._resources:
            found = self._get(f"{self.vertex.parent}/models/{model_name}@{ref}")
            if found is not None:
                self._resources[model_name] = (found.name, found.display_name)
                return self._to_version(found)
        resource = self._model_resource(model_name)
        if resource is None:
            return None
        found = self._get(f"{resource}@{ref}")
        return self._to_version(found) if found is not None else None

    def list_versions(self, model_name: str) -> list[ModelVersion]:
        from google.api_core import exceptions as gexc

        resource = self._model_resource(model_name)
        if resource is None:
            return []
        try:
            models = list(self._client().list_model_versions(name=resource))
        except gexc.NotFound:
            return []
        return sorted((self._to_version(m) for m in models), key=lambda v: int(v.version))

    def list_models(self) -> list[str]:
        """The ids of every model in the project and region."""
        return sorted(
            {m.name.rsplit("/", 1)[-1] for m in self._client().list_models(parent=self.vertex.parent)}
        )

    def set_alias(
        self, model_name: str, version: str, alias: str, *, principal: str | None = None
    ) -> ModelVersion:
        """MergeVersionAliases: Vertex takes the alias from the version that held it. ``principal``
        names the caller to the emulator's audit log (Vertex's own comes from the credentials)."""
        from google.api_core import exceptions as gexc

        check_alias(alias)
        resource = self._require(model_name)
        try:
            model = self._client().merge_version_aliases(
                name=f"{resource}@{check_ref(version)}",
                version_aliases=[alias],
                metadata=self._caller(principal),
            )
        except gexc.NotFound as exc:
            raise RegistryError(f"model {model_name!r} has no version {version!r}") from exc
        return self._to_version(model)

    def record_decision(
        self, model_name: str, version: str, decision: str, *, principal: str, reason: str
    ) -> ModelVersion:
        """Append ``{decision, principal, reason, at}`` to the version's description and set its
        ``decision`` label (UpdateModel of the version; the audit log names the caller too)."""
        from google.protobuf import field_mask_pb2

        if decision not in DECISIONS:
            raise RegistryError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
        if not reason.strip():
            raise RegistryError("a decision needs a reason")
        resource = self._require(model_name)
        current = self._get(f"{resource}@{check_ref(version)}")
        if current is None:
            raise RegistryError(f"model {model_name!r} has no version {version!r}")
        labels, metrics, decisions, text = parse_version_description(current.version_description)
        at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        decisions.append({"decision": decision, "principal": principal, "reason": reason, "at": at})
        model = {
            "name": f"{resource}@{current.version_id}",
            "version_description": describe_version(text, metrics, labels, decisions),
            "labels": {**dict(current.labels), "decision": decision},
        }
        updated = self._client().update_model(
            model=model,
            update_mask=field_mask_pb2.FieldMask(paths=["version_description", "labels"]),
            metadata=self._caller(principal),
        )
        return self._to_version(updated)

    # --- helpers --------------------------------------------------------------------------------

    def _caller(self, principal: str | None) -> tuple[tuple[str, str], ...]:
        """The request metadata (REST headers) that name the caller to the emulator."""
        return ((PRINCIPAL_HEADER, principal),) if principal and self.vertex.local else ()

    def _require(self, model_name: str) -> str:
        resource = self._model_resource(model_name)
        if resource is None:
            raise RegistryError(f"model {model_name!r} is not in the registry ({self.vertex.parent})")
        return resource

    @staticmethod
    def _to_version(model: Any) -> ModelVersion:
        labels, metrics, decisions, _ = parse_version_description(model.version_description)
        created = model.version_create_time
        return ModelVersion(
            model_name=model.name.rsplit("/", 1)[-1],
            version=str(model.version_id),
            artifact_uri=str(model.artifact_uri or ""),
            aliases=tuple(model.version_aliases),
            labels=labels or dict(model.labels),
            metrics=metrics,
            resource_name=f"{model.name}@{model.version_id}",
            created_at=created.isoformat() if created else None,
            display_name=str(model.display_name),
            decisions=tuple(decisions),
        )
