"""``google.cloud.audit.log.v1.written`` (LogEntryData + AuditLog) -> ``AuditLogEntry``, and for
Vertex AI ``ModelService`` registry methods -> ``ModelRegistryEvent``.

Any service parses to an ``AuditLogEntry`` (the rules skip what they do not name). A registry
event is an entry of ``aiplatform.googleapis.com`` whose ``methodName`` is
``google.cloud.aiplatform.{v1,v1beta1,ui}.ModelService.<M>`` with ``M`` in ``REGISTRY_METHODS``
(``ui`` is the console's spelling). Request and response fields are read in camelCase or
snake_case. Where each method carries its model, version and aliases:

- MergeVersionAliases: ``request.name`` = ``.../models/M@V``; ``request.versionAliases``, where
  ``-alias`` removes an alias;
- UpdateModel: ``request.model.name`` (``@V`` optional), ``request.model.versionAliases``,
  ``request.model.displayName``; the response is the Model (``name``, ``versionId``);
- UploadModel: ``response.model`` + ``response.modelVersionId`` when the entry has the response
  (the operation's last entry), else ``request.parentModel``; ``request.model.versionAliases``;
- DeleteModelVersion: ``request.name`` = ``.../models/M@V``;
- CopyModel: ``response.model`` + ``response.modelVersionId``, else ``request.parentModel`` or
  ``request.parent`` + ``request.modelId`` (never ``sourceModel``: that is the copy's origin).

A failed call (non-zero ``status.code``) still parses; the router skips it.
"""

from __future__ import annotations

import re
from typing import Any, Final

from events._values import as_object, get, opt_object, opt_str, opt_time, show, str_list, to_int, type_name
from events.envelope import RawEvent
from events.errors import ParseError
from events.model import REGISTRY_METHODS, AuditLogEntry, Event, ModelRegistryEvent

AIPLATFORM_SERVICE: Final = "aiplatform.googleapis.com"
_METHOD_RE: Final = re.compile(r"^google\.cloud\.aiplatform\.(v1|v1beta1|ui)\.ModelService\.([A-Za-z]+)$")
_MODEL_RE: Final = re.compile(r"^(projects/[^/]+/locations/[^/]+/models/([^/@]+))(?:@([^/@]+))?$")


def parse_audit(raw: RawEvent) -> Event:
    entry = parse_entry(raw)
    m = _METHOD_RE.match(entry.method)
    if entry.service == AIPLATFORM_SERVICE and m and m.group(2) in REGISTRY_METHODS:
        return _registry_event(entry, m.group(1), m.group(2))
    return entry


def parse_entry(raw: RawEvent) -> AuditLogEntry:
    if isinstance(raw.data, bytes) or raw.data is None:
        raise ParseError(
            "audit log event data must be a JSON object (LogEntryData), got non-JSON bytes or nothing"
        )
    data = as_object(raw.data, "audit log event data")
    if "protoPayload" not in data and "proto_payload" not in data:
        raise ParseError("protoPayload is missing: the log entry is not an audit log entry")
    payload = as_object(get(data, "protoPayload"), "protoPayload")
    extensions = {k.lower(): v for k, v in raw.context.extensions.items()}
    service = opt_str(payload, "serviceName", "protoPayload.serviceName") or extensions.get("servicename")
    if not service and raw.context.subject and "/" in raw.context.subject:
        # Eventarc's subject is "<service>/<resource name>".
        service = raw.context.subject.split("/", 1)[0]
    if not service:
        raise ParseError("protoPayload.serviceName is missing and the event has no servicename attribute")
    method = opt_str(payload, "methodName", "protoPayload.methodName") or extensions.get("methodname")
    if not method:
        raise ParseError("protoPayload.methodName is missing and the event has no methodname attribute")
    auth = opt_object(payload, "authenticationInfo", "protoPayload.authenticationInfo")
    operation = opt_object(data, "operation", "operation")
    status = opt_object(payload, "status", "protoPayload.status")
    code = get(status, "code")
    severity = data.get("severity")
    return AuditLogEntry(
        context=raw.context,
        service=service,
        method=method,
        resource_name=opt_str(payload, "resourceName", "protoPayload.resourceName"),
        principal=opt_str(auth, "principalEmail", "protoPayload.authenticationInfo.principalEmail"),
        operation_id=opt_str(operation, "id", "operation.id"),
        operation_first=_opt_bool(operation.get("first"), "operation.first"),
        operation_last=_opt_bool(operation.get("last"), "operation.last"),
        insert_id=opt_str(data, "insertId", "insertId"),
        log_name=opt_str(data, "logName", "logName"),
        severity=str(severity)
        if isinstance(severity, str | int) and not isinstance(severity, bool)
        else None,
        timestamp=opt_time(data, "timestamp", "timestamp"),
        request=opt_object(payload, "request", "protoPayload.request"),
        response=opt_object(payload, "response", "protoPayload.response"),
        status_code=None if code is None else to_int(code, "protoPayload.status.code"),
    )


def _registry_event(entry: AuditLogEntry, api_version: str, method: str) -> ModelRegistryEvent:
    request, response = entry.request, entry.response
    req_model = opt_object(request, "model", "protoPayload.request.model")
    # UploadModel/CopyModel responses name the model as a string; UpdateModel's response is a Model.
    resp_model = get(response, "model")
    candidates: list[tuple[Any, str]] = []
    if method in ("MergeVersionAliases", "DeleteModelVersion"):
        candidates.append((get(request, "name"), "protoPayload.request.name"))
    if method == "UpdateModel":
        candidates += [
            (get(req_model, "name"), "protoPayload.request.model.name"),
            (get(response, "name"), "protoPayload.response.name"),
        ]
    if method in ("UploadModel", "CopyModel"):
        parent, model_id = get(request, "parent"), get(request, "modelId")
        candidates += [
            (resp_model if isinstance(resp_model, str) else None, "protoPayload.response.model"),
            (get(request, "parentModel"), "protoPayload.request.parentModel"),
            (
                f"{parent}/models/{model_id}"
                if isinstance(parent, str) and isinstance(model_id, str)
                else None,
                "",
            ),
        ]
    if method != "CopyModel":
        candidates.append((entry.resource_name, "protoPayload.resourceName"))
    model = model_id_ = version = None
    for value, where in candidates:
        if value is None:
            continue
        if not isinstance(value, str):
            raise ParseError(f"{where} must be a model resource name string, got {type_name(value)}")
        m = _MODEL_RE.match(value)
        if m:
            model, model_id_, version = m.group(1), m.group(2), m.group(3)
            break
    if version is None:
        version = _first_version(
            (get(req_model, "versionId"), "protoPayload.request.model.versionId"),
            (get(response, "modelVersionId"), "protoPayload.response.modelVersionId"),
            (get(response, "versionId"), "protoPayload.response.versionId"),
        )
    aliases: tuple[str, ...] = ()
    if method == "MergeVersionAliases":
        aliases = str_list(get(request, "versionAliases"), "protoPayload.request.versionAliases")
    elif method in ("UpdateModel", "UploadModel"):
        aliases = str_list(get(req_model, "versionAliases"), "protoPayload.request.model.versionAliases")
    display_name = opt_str(req_model, "displayName", "protoPayload.request.model.displayName")
    if display_name is None and method in ("UpdateModel", "MergeVersionAliases"):  # both return the Model
        display_name = opt_str(response, "displayName", "protoPayload.response.displayName")
    return ModelRegistryEvent(
        audit=entry,
        method=method,
        api_version=api_version,
        model=model,
        model_id=model_id_,
        version=version,
        aliases=tuple(a for a in aliases if not a.startswith("-")),
        removed_aliases=tuple(a[1:] for a in aliases if a.startswith("-") and len(a) > 1),
        display_name=display_name,
    )


def _first_version(*candidates: tuple[Any, str]) -> str | None:
    for value, where in candidates:
        if value is None or value == "":
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ParseError(f"{where} must be a version id string, got {show(value)}")
        return value
    return None


def _opt_bool(value: Any, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ParseError(f"{where} must be a boolean, got {show(value)}")
