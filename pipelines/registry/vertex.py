"""Vertex AI Model Registry: each model is a parent model, each registration a new version of it.

``google.cloud.aiplatform`` is imported inside the methods (it costs seconds at import). The
arguments are built by pure functions (``upload_arguments``, ``vertex_labels``) so that they are
tested here without the service.

Metrics and the unsanitised labels travel in the version description as JSON (label values
cannot hold a URI or a decimal point); ``get`` reads them back.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pipelines.ports import ModelVersion
from pipelines.registry import DEFAULT_ALIAS, RegistryError, check_alias, check_model_id

MAX_LABELS: Final = 64
MAX_LABEL_LEN: Final = 63
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


def upload_arguments(
    *,
    project: str,
    location: str,
    model_name: str,
    artifact_uri: str,
    serving_image: str,
    labels: Mapping[str, str],
    metrics: Mapping[str, float],
    aliases: Sequence[str],
    description: str,
    parent_exists: bool,
) -> dict[str, Any]:
    """The keyword arguments of ``aiplatform.Model.upload`` for a new version of ``model_name``."""
    check_model_id(model_name)
    for alias in aliases:
        check_alias(alias)
    args: dict[str, Any] = {
        "project": project,
        "location": location,
        "display_name": model_name,
        "artifact_uri": artifact_uri,
        "serving_container_image_uri": serving_image,
        "labels": vertex_labels(labels),
        "version_aliases": [a for a in aliases if a != DEFAULT_ALIAS],
        "version_description": json.dumps(
            {"description": description, "metrics": dict(metrics), "labels": dict(labels)}, sort_keys=True
        ),
        "is_default_version": True,
        "sync": True,
    }
    if parent_exists:
        args["parent_model"] = f"projects/{project}/locations/{location}/models/{model_name}"
    else:
        args["model_id"] = model_name
    return args


def parse_version_description(text: str | None) -> tuple[dict[str, str], dict[str, float]]:
    """Labels and metrics from a version description written by ``upload_arguments``."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return {}, {}
    if not isinstance(data, dict):
        return {}, {}
    labels = {str(k): str(v) for k, v in (data.get("labels") or {}).items()}
    metrics = {str(k): float(v) for k, v in (data.get("metrics") or {}).items()}
    return labels, metrics


class VertexModelRegistry:
    def __init__(self, project: str, location: str, serving_image: str | None = None) -> None:
        self.project = project
        self.location = location
        self.serving_image = serving_image or os.environ.get("MLOPS_SERVING_IMAGE")

    def _model_resource(self, model_name: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/models/{check_model_id(model_name)}"

    def _model(self, resource: str) -> Any:
        from google.api_core import exceptions as gexc
        from google.cloud import aiplatform

        try:
            return aiplatform.Model(model_name=resource, project=self.project, location=self.location)
        except gexc.NotFound:
            return None

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
        from google.cloud import aiplatform

        if not self.serving_image:
            raise RegistryError(
                "MLOPS_SERVING_IMAGE is not set: name the Vertex AI prebuilt scikit-learn prediction "
                "image (sklearn-cpu) matching the training scikit-learn version"
            )
        parent = self._model(f"projects/{self.project}/locations/{self.location}/models/{model_name}")
        args = upload_arguments(
            project=self.project,
            location=self.location,
            model_name=model_name,
            artifact_uri=artifact_uri,
            serving_image=self.serving_image,
            labels=labels,
            metrics=metrics,
            aliases=aliases,
            description=description,
            parent_exists=parent is not None,
        )
        model = aiplatform.Model.upload(**args)
        return self._to_version(model_name, model)

    def get(self, model_name: str, version_or_alias: str) -> ModelVersion | None:
        model = self._model(f"{self._model_resource(model_name)}@{version_or_alias}")
        return self._to_version(model_name, model) if model is not None else None

    def list_versions(self, model_name: str) -> list[ModelVersion]:
        from google.api_core import exceptions as gexc
        from google.cloud import aiplatform

        registry = aiplatform.models.ModelRegistry(
            model=self._model_resource(model_name), project=self.project, location=self.location
        )
        try:
            infos = registry.list_versions()
        except gexc.NotFound:
            return []
        versions = [self.get(model_name, str(info.version_id)) for info in infos]
        return sorted((v for v in versions if v is not None), key=lambda v: int(v.version))

    def set_alias(self, model_name: str, version: str, alias: str) -> ModelVersion:
        from google.cloud import aiplatform

        check_alias(alias)
        registry = aiplatform.models.ModelRegistry(
            model=self._model_resource(model_name), project=self.project, location=self.location
        )
        # MergeVersionAliases: Vertex removes the alias from the version that held it.
        registry.add_version_aliases(new_aliases=[alias], version=version)
        result = self.get(model_name, version)
        if result is None:
            raise RegistryError(f"model {model_name!r} version {version!r} vanished after setting {alias!r}")
        return result

    def _to_version(self, model_name: str, model: Any) -> ModelVersion:
        labels, metrics = parse_version_description(getattr(model, "version_description", None))
        return ModelVersion(
            model_name=model_name,
            version=str(model.version_id),
            artifact_uri=str(model.uri or ""),
            aliases=tuple(model.version_aliases or ()),
            labels=labels or dict(model.labels or {}),
            metrics=metrics,
            resource_name=f"{model.resource_name}@{model.version_id}",
            created_at=str(model.version_create_time)
            if getattr(model, "version_create_time", None)
            else None,
        )
