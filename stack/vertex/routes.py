"""The REST surface: which HTTP verb and path reach which method, taken from Google's own
generated REST transports (``google.cloud.aiplatform_v1.services.*.transports.rest_base``), so the
paths are exactly those the clients send. Path templates (``/v1/{parent=projects/*/locations/*}/
pipelineJobs``) become regular expressions; the request message of each method is built from the
path variables, the query string and the body, as gRPC transcoding defines
(https://google.aip.dev/127): with ``body: "*"`` the body is the request, with ``body: "field"`` it
is that field, and the remaining fields come from the query string.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Final

from google.cloud import aiplatform_v1 as v1
from google.longrunning import operations_pb2

# (service module, method, request type, lro): the methods the emulator implements.
METHODS: Final[tuple[tuple[str, str, Any, bool], ...]] = (
    ("pipeline_service", "CreatePipelineJob", v1.CreatePipelineJobRequest, False),
    ("pipeline_service", "GetPipelineJob", v1.GetPipelineJobRequest, False),
    ("pipeline_service", "ListPipelineJobs", v1.ListPipelineJobsRequest, False),
    ("pipeline_service", "CancelPipelineJob", v1.CancelPipelineJobRequest, False),
    ("model_service", "UploadModel", v1.UploadModelRequest, True),
    ("model_service", "GetModel", v1.GetModelRequest, False),
    ("model_service", "ListModels", v1.ListModelsRequest, False),
    ("model_service", "ListModelVersions", v1.ListModelVersionsRequest, False),
    ("model_service", "MergeVersionAliases", v1.MergeVersionAliasesRequest, False),
    ("model_service", "UpdateModel", v1.UpdateModelRequest, False),
    ("model_service", "DeleteModelVersion", v1.DeleteModelVersionRequest, True),
    ("model_service", "DeleteModel", v1.DeleteModelRequest, True),
    ("endpoint_service", "CreateEndpoint", v1.CreateEndpointRequest, True),
    ("endpoint_service", "GetEndpoint", v1.GetEndpointRequest, False),
    ("endpoint_service", "ListEndpoints", v1.ListEndpointsRequest, False),
    ("endpoint_service", "UpdateEndpoint", v1.UpdateEndpointRequest, False),
    ("endpoint_service", "DeleteEndpoint", v1.DeleteEndpointRequest, True),
    ("endpoint_service", "DeployModel", v1.DeployModelRequest, True),
    ("endpoint_service", "UndeployModel", v1.UndeployModelRequest, True),
    ("prediction_service", "Predict", v1.PredictRequest, False),
    ("prediction_service", "RawPredict", v1.RawPredictRequest, False),
)

_VARIABLE: Final = re.compile(r"\{([\w.]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class Route:
    verb: str  # GET, POST, PATCH, DELETE
    template: str
    pattern: re.Pattern[str]
    variables: tuple[str, ...]  # path variables, in order ("parent", "model.name", ...)
    body: str  # "*", a field name, or "" (no body)
    method: str  # "ModelService.UploadModel"
    request: Any  # the raw protobuf class of the request
    lro: bool


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """``/v1/{name=projects/*/locations/*/models/*}:deleteVersion`` -> a regex and its variables.
    ``*`` is one path segment (no ``/`` and, so that custom verbs stay apart, no ``:``)."""
    out, pos = "^", 0
    variables: list[str] = []
    for m in _VARIABLE.finditer(template):
        out += re.escape(template[pos : m.start()])
        segments = (m.group(2) or "*").split("/")
        body = "/".join("[^/:]+" if s == "*" else ".+" if s == "**" else re.escape(s) for s in segments)
        out += f"(?P<v{len(variables)}>{body})"
        variables.append(m.group(1))
        pos = m.end()
    out += re.escape(template[pos:]) + "$"
    return re.compile(out), tuple(variables)


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


def _http_options(module: str, method: str) -> list[dict[str, str]]:
    rest_base = importlib.import_module(f"google.cloud.aiplatform_v1.services.{module}.transports.rest_base")
    transport = getattr(rest_base, f"_Base{_camel(module)}RestTransport")
    options: list[dict[str, str]] = getattr(transport, f"_Base{method}")._get_http_options()
    return options


def build_routes() -> list[Route]:
    routes: list[Route] = []
    for module, method, request_type, lro in METHODS:
        for option in _http_options(module, method):
            pattern, variables = compile_template(option["uri"])
            routes.append(
                Route(
                    verb=option["method"].upper(),
                    template=option["uri"],
                    pattern=pattern,
                    variables=variables,
                    body=option.get("body", ""),
                    method=f"{_camel(module)}.{method}",
                    request=request_type.pb(),
                    lro=lro,
                )
            )
    # operations.get, for the operations of every resource (the mixin's paths).
    for option in _http_options("model_service", "GetOperation"):
        pattern, variables = compile_template(option["uri"])
        routes.append(
            Route(
                "GET",
                option["uri"],
                pattern,
                variables,
                "",
                "Operations.GetOperation",
                operations_pb2.GetOperationRequest,
                False,
            )
        )
    return routes


def match(routes: list[Route], verb: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        if route.verb != verb:
            continue
        m = route.pattern.match(path)
        if m:
            return route, {var: m.group(f"v{i}") for i, var in enumerate(route.variables)}
    return None
