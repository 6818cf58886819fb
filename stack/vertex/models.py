"""ModelService: the Model Registry, each model a set of versions with aliases.

Vertex's rules, kept here: a model's first version gets the ``default`` alias, and exactly one
version holds it at any time (setting ``default`` elsewhere moves it; it cannot be removed); an
alias names one version per model, so setting it on a version takes it from the one that had
it; ``-alias`` removes an alias; aliases match ``[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]`` (so they are
never mistaken for the numeric version ids). Ids Vertex generates are numeric; a caller may
choose ``modelId``. Names accept ``models/ID``, ``models/ID@VERSION`` and ``models/ID@ALIAS``.

A version cannot be deleted while it is deployed or when it is the model's only version
(Vertex's documented rules); this emulator also refuses a version that holds aliases other than
``default`` (remove them first), a conservative reading. Deleting the ``default`` version moves
``default`` to the newest remaining version, as the Model Registry documentation says.

Every write emits the audit-log event Eventarc would deliver (see ``audit``).
"""

from __future__ import annotations

import re
from typing import Any, Final

from google.cloud import aiplatform_v1 as v1
from google.protobuf import empty_pb2

from stack.vertex import audit, protos
from stack.vertex.context import Caller, Context
from stack.vertex.errors import already_exists, failed_precondition, invalid_argument, not_found
from stack.vertex.filters import compile_filter, page
from stack.vertex.names import numeric_id
from stack.vertex.operations import generic_metadata

DEFAULT: Final = "default"
_ALIAS: Final = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
_MODEL_ID: Final = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
_NAME: Final = re.compile(r"^(projects/[^/]+/locations/[^/]+/models/[^/@]+)(?:@([^/@]+))?$")
_MODEL_FIELDS: Final = {"display_name", "description", "labels"}
_VERSION_FIELDS: Final = {"version_description", "labels", "version_aliases"}
_FIELDS: Final = {"display_name": lambda m: m.display_name}


def _type_url(message: Any) -> str:
    return f"type.googleapis.com/{message.DESCRIPTOR.full_name}"


def _as_audit(message: Any) -> dict[str, Any]:
    return {"@type": _type_url(message), **protos.to_dict(message)}


def check_alias(alias: str, field: str = "version_aliases") -> None:
    if alias != DEFAULT and (not _ALIAS.match(alias) or alias.isdigit()):
        raise invalid_argument(
            f"Invalid version alias {alias!r}: it must match [a-z][a-zA-Z0-9-]{{0,126}}[a-z0-9].", field
        )


class Models:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._versions: dict[str, dict[str, Any]] = {}  # model name -> version id -> Model pb
        self._meta: dict[str, dict[str, Any]] = {}  # model name -> {"next_version": n, "labels": {...}}

    def load(self) -> None:
        for name, model in self.ctx.store.load_all("projects/*/locations/*/models/*", protos.Model):
            if "@" in name:
                self._versions.setdefault(model.name, {})[model.version_id] = model
        for model_name, versions in self._versions.items():
            meta = self.ctx.store.load_doc(model_name, ".model.json") or {}
            meta.setdefault("next_version", max(int(v) for v in versions) + 1)
            meta.setdefault("labels", {})
            self._meta[model_name] = meta

    # --- lookups ------------------------------------------------------------------------------

    def _split(self, name: str, field: str = "name") -> tuple[str, str | None]:
        m = _NAME.match(self.ctx.canonical(name))
        if not m:
            raise invalid_argument(
                f"Invalid model name {name!r}: expected projects/P/locations/L/models/ID[@VERSION].", field
            )
        return m.group(1), m.group(2)

    def _version(self, name: str, field: str = "name") -> Any:
        model_name, ref = self._split(name, field)
        versions = self._versions.get(model_name)
        if not versions:
            raise not_found(f"Model {name}")
        if ref is None or ref == "-":
            ref = DEFAULT
        if ref.isdigit():
            found = versions.get(ref)
        else:
            found = next((v for v in versions.values() if ref in v.version_aliases), None)
        if found is None:
            raise not_found(f"Model {name}")
        return found

    def _view(self, version: Any) -> Any:
        """A version as Vertex answers it: model and version labels merged."""
        out = protos.Model()
        out.CopyFrom(version)
        labels = {**self._meta.get(version.name, {}).get("labels", {}), **version.labels}
        out.labels.clear()
        out.labels.update(labels)
        return out

    def resolve(self, name: str, field: str = "name") -> Any:
        with self.ctx.lock:
            return self._view(self._version(name, field))

    # --- writes -------------------------------------------------------------------------------

    def _save(self, model_name: str, *versions: Any) -> None:
        for version in versions:
            stamp = protos.timestamp()
            version.version_update_time.CopyFrom(stamp)
            version.update_time.CopyFrom(stamp)
            version.etag = numeric_id()
            self.ctx.store.save(f"{model_name}@{version.version_id}", version)
        self.ctx.store.save_doc(model_name, self._meta[model_name], ".model.json")

    def _take_aliases(self, model_name: str, target: Any, aliases: list[str]) -> list[Any]:
        """Give ``aliases`` to ``target``, taking each from the version that had it."""
        touched = []
        for other in self._versions[model_name].values():
            if other is target:
                continue
            keep = [a for a in other.version_aliases if a not in aliases]
            if len(keep) != len(other.version_aliases):
                del other.version_aliases[:]
                other.version_aliases.extend(keep)
                touched.append(other)
        target.version_aliases.extend(a for a in aliases if a not in target.version_aliases)
        return touched

    def _emit(
        self, caller: Caller, method: str, resource: str, request: Any, response: dict[str, Any] | None
    ) -> None:
        project = resource.split("/")[1]
        location = resource.split("/")[3]
        self.ctx.audit.emit(
            audit.build_event(
                method=method,
                project=self.ctx.project_id(resource) if project.isdigit() else project,
                location=location,
                resource_name=resource,
                request=_as_audit(request),
                response=response,
                principal=caller.principal,
                user_agent=caller.user_agent,
            )
        )

    def upload(self, request: Any, caller: Caller) -> Any:
        parent = self.ctx.parent(request.parent)
        model = request.model
        if not model.display_name:
            raise invalid_argument("model.display_name is required.", "model.display_name")
        if model.artifact_uri and not model.artifact_uri.startswith("gs://"):
            raise invalid_argument(
                f"model.artifact_uri must be a Cloud Storage URI (gs://...), got {model.artifact_uri!r}.",
                "model.artifact_uri",
            )
        if not model.container_spec.image_uri:
            raise invalid_argument(
                "model.container_spec.image_uri is required for a custom model.",
                "model.container_spec.image_uri",
            )
        aliases = list(model.version_aliases)
        for alias in aliases:
            check_alias(alias, "model.version_aliases")
        if len(set(aliases)) != len(aliases):
            raise invalid_argument(
                f"model.version_aliases repeats an alias: {aliases}.", "model.version_aliases"
            )
        with self.ctx.lock:
            if request.parent_model:
                model_name, ref = self._split(request.parent_model, "parent_model")
                if ref is not None or model_name not in self._versions:
                    raise not_found(f"Model {request.parent_model}")
                if not model_name.startswith(parent.name + "/"):
                    raise invalid_argument("parent_model is not under parent.", "parent_model")
                if request.model_id and model_name.rsplit("/", 1)[-1] != request.model_id:
                    raise invalid_argument("model_id and parent_model name different models.", "model_id")
            else:
                model_id = request.model_id or numeric_id()
                if not _MODEL_ID.match(model_id) and not model_id.isdigit():
                    raise invalid_argument(
                        f"Invalid model_id {model_id!r}: up to 63 of [a-z0-9_-], not starting with a digit or '-'.",
                        "model_id",
                    )
                model_name = f"{parent.name}/models/{model_id}"
                if model_name in self._versions:
                    raise already_exists(f"Model {model_name} already exists.")
                self._versions[model_name] = {}
                self._meta[model_name] = {"next_version": 1, "labels": {}}
            meta = self._meta[model_name]
            version_id = str(meta["next_version"])
            meta["next_version"] += 1
            first = not self._versions[model_name]
            new = protos.Model()
            new.CopyFrom(model)
            for output_only in (
                "deployed_models",
                "version_aliases",
                "create_time",
                "etag",
                "model_source_info",
            ):
                new.ClearField(output_only)
            new.name = model_name
            new.version_id = version_id
            now = protos.timestamp()
            existing = next(iter(self._versions[model_name].values()), None)
            new.create_time.CopyFrom(existing.create_time if existing is not None else now)
            new.version_create_time.CopyFrom(now)
            R = v1.Model.DeploymentResourcesType
            del new.supported_deployment_resources_types[:]
            new.supported_deployment_resources_types.extend([R.DEDICATED_RESOURCES, R.SHARED_RESOURCES])
            new.model_source_info.source_type = v1.ModelSourceInfo.ModelSourceType.CUSTOM
            self._versions[model_name][version_id] = new
            wanted = aliases if not first or DEFAULT in aliases else [*aliases, DEFAULT]
            touched = self._take_aliases(model_name, new, wanted)
            self._save(model_name, new, *touched)
            response = v1.UploadModelResponse.pb()(model=model_name, model_version_id=version_id)
            op = self.ctx.operations.done(
                model_name, generic_metadata(v1.UploadModelOperationMetadata.pb()), response
            )
        self._emit(caller, "UploadModel", request.parent, request, _as_audit(response))
        return op

    def get(self, name: str) -> Any:
        return self.resolve(name)

    def list(self, request: Any) -> Any:
        parent = self.ctx.parent(request.parent)
        keep = compile_filter(request.filter, _FIELDS, lambda m: m.labels)
        with self.ctx.lock:
            defaults = [
                self._view(self._version(name))
                for name in self._versions
                if name.startswith(parent.name + "/") and self._versions[name]
            ]
        models = sorted((m for m in defaults if keep(m)), key=lambda m: protos.seconds(m.create_time))
        selected, token = page(models, request.page_size, request.page_token)
        response = v1.ListModelsResponse.pb()(next_page_token=token)
        response.models.extend(selected)
        return response

    def list_versions(self, request: Any) -> Any:
        model_name, ref = self._split(request.name)
        keep = compile_filter(request.filter, _FIELDS, lambda m: m.labels)
        with self.ctx.lock:
            if ref is not None or model_name not in self._versions:
                raise not_found(f"Model {request.name}")
            versions = [self._view(v) for v in self._versions[model_name].values()]
        versions = sorted((v for v in versions if keep(v)), key=lambda v: int(v.version_id))
        selected, token = page(versions, request.page_size, request.page_token)
        response = v1.ListModelVersionsResponse.pb()(next_page_token=token)
        response.models.extend(selected)
        return response

    def merge_version_aliases(self, request: Any, caller: Caller) -> Any:
        adds = [a for a in request.version_aliases if not a.startswith("-")]
        removes = [a[1:] for a in request.version_aliases if a.startswith("-")]
        for alias in [*adds, *removes]:
            check_alias(alias)
        both = set(adds) & set(removes)  # adding and removing the same alias cancel out
        adds = [a for a in adds if a not in both]
        removes = [a for a in removes if a not in both]
        if DEFAULT in removes:
            raise invalid_argument(
                "The default alias cannot be removed: set it on another version instead.", "version_aliases"
            )
        with self.ctx.lock:
            target = self._version(request.name)
            model_name = target.name
            touched = self._take_aliases(model_name, target, adds)
            keep = [a for a in target.version_aliases if a not in removes]
            del target.version_aliases[:]
            target.version_aliases.extend(keep)
            self._save(model_name, target, *touched)
            result = self._view(target)
        self._emit(caller, "MergeVersionAliases", request.name, request, _as_audit(result))
        return result

    def update(self, request: Any, caller: Caller) -> Any:
        paths = set(request.update_mask.paths)
        if not paths:
            raise invalid_argument("update_mask is required.", "update_mask")
        model_name, ref = self._split(request.model.name, "model.name")
        version_update = ref is not None and ref != "-"
        allowed = _VERSION_FIELDS if version_update else _MODEL_FIELDS
        unsupported = sorted(paths - allowed)
        if unsupported:
            kind = (
                "a model version (model.name with @VERSION)"
                if version_update
                else "a model (model.name without @VERSION)"
            )
            raise invalid_argument(
                f"Cannot update {unsupported} of {kind}; supported: {sorted(allowed)}.", "update_mask"
            )
        with self.ctx.lock:
            target = self._version(request.model.name, "model.name")
            versions = self._versions[model_name]
            touched = [target]
            if version_update:
                if "version_description" in paths:
                    target.version_description = request.model.version_description
                if "labels" in paths:
                    target.labels.clear()
                    target.labels.update(request.model.labels)
                if "version_aliases" in paths:
                    wanted = list(request.model.version_aliases)
                    for alias in wanted:
                        check_alias(alias, "model.version_aliases")
                    if DEFAULT in target.version_aliases and DEFAULT not in wanted:
                        wanted.append(DEFAULT)  # exactly one version keeps default
                    del target.version_aliases[:]
                    touched += self._take_aliases(model_name, target, wanted)
            else:
                if "labels" in paths:
                    self._meta[model_name]["labels"] = dict(request.model.labels)
                for version in versions.values():
                    if "display_name" in paths:
                        version.display_name = request.model.display_name
                    if "description" in paths:
                        version.description = request.model.description
                touched = list(versions.values())
            self._save(model_name, *touched)
            result = self._view(target)
        self._emit(caller, "UpdateModel", request.model.name, request, _as_audit(result))
        return result

    def delete_version(self, request: Any, caller: Caller) -> Any:
        model_name, ref = self._split(request.name)
        if ref is None:
            raise invalid_argument("name must include the version: models/ID@VERSION.", "name")
        with self.ctx.lock:
            target = self._version(request.name)
            versions = self._versions[model_name]
            if target.deployed_models:
                endpoints = sorted({d.endpoint for d in target.deployed_models})
                raise failed_precondition(
                    f"Model version {model_name}@{target.version_id} is deployed to {endpoints}: undeploy it first."
                )
            if len(versions) == 1:
                raise failed_precondition(
                    f"{model_name}@{target.version_id} is the model's only version: delete the model instead."
                )
            others = [a for a in target.version_aliases if a != DEFAULT]
            if others:
                raise failed_precondition(
                    f"Model version {model_name}@{target.version_id} holds aliases {others}: remove them first."
                )
            del versions[target.version_id]
            self.ctx.store.delete(f"{model_name}@{target.version_id}")
            touched = []
            if DEFAULT in target.version_aliases:
                newest = max(versions.values(), key=lambda v: int(v.version_id))
                newest.version_aliases.append(DEFAULT)
                touched.append(newest)
            self._save(model_name, *touched)
            op = self.ctx.operations.done(
                model_name, generic_metadata(v1.DeleteOperationMetadata.pb()), empty_pb2.Empty()
            )
        self._emit(caller, "DeleteModelVersion", request.name, request, None)
        return op

    def delete(self, request: Any, caller: Caller) -> Any:
        model_name, ref = self._split(request.name)
        with self.ctx.lock:
            versions = self._versions.get(model_name)
            if ref is not None or not versions:
                raise not_found(f"Model {request.name}")
            deployed = [v.version_id for v in versions.values() if v.deployed_models]
            if deployed:
                raise failed_precondition(
                    f"Model {model_name} has deployed versions {deployed}: undeploy them first."
                )
            for version_id in list(versions):
                self.ctx.store.delete(f"{model_name}@{version_id}")
            self.ctx.store.path(model_name, ".model.json").unlink(missing_ok=True)
            del self._versions[model_name]
            del self._meta[model_name]
            op = self.ctx.operations.done(
                model_name, generic_metadata(v1.DeleteOperationMetadata.pb()), empty_pb2.Empty()
            )
        self._emit(caller, "DeleteModel", request.name, request, None)
        return op

    # --- deployments (kept up to date by the endpoints) ------------------------------------------

    def set_deployed(
        self, model_name: str, version_id: str, endpoint: str, deployed_id: str, deployed: bool
    ) -> None:
        with self.ctx.lock:
            version = self._versions.get(model_name, {}).get(version_id)
            if version is None:
                return
            refs = [r for r in version.deployed_models if r.deployed_model_id != deployed_id]
            del version.deployed_models[:]
            version.deployed_models.extend(refs)
            if deployed:
                version.deployed_models.add(endpoint=endpoint, deployed_model_id=deployed_id)
            self._save(model_name, version)
