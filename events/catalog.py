"""The catalog of routable pipelines, read from what the compiled templates declare. Pure.

KFP writes every pipeline input's type, default and docstring description into the template
(``root.inputDefinitions.parameters``); ``mlops-events compile`` copies them into the manifest, and
this module turns a manifest (or a template) into the typed catalog the router validates against.
Nothing here is written by hand per pipeline, so the catalog cannot disagree with a template.

Beyond their type, values are checked where the pipeline says so in a parameter's description
(it travels inside the template, so templates from elsewhere carry it too):

- ``Range: 1..50.`` (either bound may be omitted: ``Range: 1..``) for numbers;
- ``One of: classification, regression.`` for strings;
- a parameter named ``model_name`` must be a Vertex model id (``[a-z_][a-z0-9_-]{0,62}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

ParamType = Literal["str", "int", "float", "bool", "list", "dict"]

# KFP IR parameterType -> catalog type.
IR_TYPES: Final[dict[str, ParamType]] = {
    "STRING": "str",
    "NUMBER_INTEGER": "int",
    "NUMBER_DOUBLE": "float",
    "BOOLEAN": "bool",
    "LIST": "list",
    "STRUCT": "dict",
}

_PY_TYPES: Final[dict[ParamType, tuple[type, ...]]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}

# Parameters that would let an event choose authority rather than data. No pipeline may declare
# them as inputs (compile refuses), and the router rejects them by name with a clear reason.
RESERVED_PARAMETERS: Final = frozenset(
    {
        "service_account",
        "pipeline_root",
        "project",
        "project_id",
        "location",
        "region",
        "template",
        "template_path",
        "network",
        "encryption_spec_key_name",
    }
)

# Vertex model ids: chosen at upload (ModelService.UploadModel ``model_id``), or the numeric id
# Vertex gives a model created without one (in the console, for instance).
MODEL_ID_RE: Final = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$|^[0-9]{1,20}$")
MODEL_PARAMETER: Final = "model_name"
MAX_STRING_CHARS: Final = 4096
# A routable pipeline name: it appears in rules, job ids and labels.
PIPELINE_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# An Artifact Registry KFP template pinned by digest (a tag could move under a deployed rule).
REGISTRY_TEMPLATE_RE: Final = re.compile(
    r"^https://[a-z0-9-]+-kfp\.pkg\.dev/[^/]+/[^/]+/[^/]+/sha256:[0-9a-f]{64}$"
)  # no data URI or name needs more; keeps job bodies and logs sane

_NUMBER: Final = r"-?\d+(?:\.\d+)?"
_RANGE: Final = re.compile(rf"Range:\s*({_NUMBER})?\s*\.\.\s*({_NUMBER})?")
_CHOICES: Final = re.compile(r"One of:\s*([^.\n]+)")


class CatalogError(ValueError):
    """A manifest or template that does not describe pipelines the router can use."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    description: str = ""
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> str | None:
        """A problem with ``value`` for this parameter, or None when it fits."""
        if value is None:
            return f"parameter {self.name!r} is required" if self.required else None
        # bool is an int in Python: do not let True pass as an int or a float.
        if isinstance(value, bool) and self.type != "bool":
            return f"parameter {self.name!r} must be {self.type}, got bool"
        if not isinstance(value, _PY_TYPES[self.type]):
            return f"parameter {self.name!r} must be {self.type}, got {type(value).__name__}"
        if isinstance(value, str):
            return self._check_text(value)
        if isinstance(value, int | float):
            low, high, number = self.minimum, self.maximum, float(value)
            if (low is not None and number < low) or (high is not None and number > high):
                return f"parameter {self.name!r} is {value}, outside its range {_bounds(low, high)}"
        return None

    def _check_text(self, value: str) -> str | None:
        if len(value) > MAX_STRING_CHARS:
            return f"parameter {self.name!r} has {len(value)} characters (at most {MAX_STRING_CHARS})"
        if self.choices and value not in self.choices:
            return f"parameter {self.name!r} is {value!r}, not one of: {', '.join(self.choices)}"
        if self.name == MODEL_PARAMETER and not MODEL_ID_RE.match(value):
            return (
                f"parameter {self.name!r} is {value[:80]!r}: not a Vertex model id (up to 63 of "
                "lowercase letters, digits, '_' and '-', starting with a letter or '_'; or a numeric id)"
            )
        return None

    def coerce(self, value: Any) -> Any:
        """Normalise a value that passed ``check`` (float params accept ints; lists stay lists)."""
        if self.type == "float" and isinstance(value, int):
            return float(value)
        if self.type == "list" and isinstance(value, tuple):
            return list(value)
        return value

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type, "required": self.required, "description": self.description}
        if not self.required:
            doc["default"] = self.default
        return doc


@dataclass(frozen=True)
class PipelineSpec:
    """One routable pipeline: its typed inputs and where its template comes from."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    source: str = ""  # e.g. "pipelines/definitions/training.py", "rules: my_templates/x.yaml"
    template_uri: str | None = None  # an Artifact Registry template (sent as templateUri)

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def validate(self, values: Mapping[str, Any]) -> list[str]:
        """Every problem with ``values`` as this pipeline's parameters (empty when valid)."""
        problems: list[str] = []
        declared = {p.name for p in self.parameters}
        for key in values:
            if key in RESERVED_PARAMETERS:
                problems.append(
                    f"parameter {key!r} is not allowed: events choose data, never the "
                    "template, service account, pipeline root, project or region"
                )
            elif key not in declared:
                problems.append(
                    f"pipeline {self.name!r} has no parameter {key!r} (it takes: {', '.join(sorted(declared))})"
                )
        for param in self.parameters:
            problem = param.check(values.get(param.name))
            if problem:
                problems.append(problem)
        return problems

    def resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validated values with types normalised. Nulls are left out, as the SDK does: the
        template's default applies (a null sent to Vertex is not a value of any type)."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            param = self.parameter(key)
            if param is not None and value is not None:
                out[key] = param.coerce(value)
        return out


@dataclass(frozen=True)
class Catalog(Mapping[str, PipelineSpec]):
    """Pipeline name -> spec, in manifest order. A Mapping, so ``name in catalog`` reads well."""

    pipelines: Mapping[str, PipelineSpec] = field(default_factory=dict)

    def __getitem__(self, name: str) -> PipelineSpec:
        return self.pipelines[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.pipelines)

    def __len__(self) -> int:
        return len(self.pipelines)

    def known(self) -> str:
        return ", ".join(self.pipelines) or "(none: run `mlops-events compile`)"

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> Catalog:
        entries = manifest.get("pipelines")
        if not isinstance(entries, Mapping):
            raise CatalogError("manifest has no 'pipelines' mapping (run `mlops-events compile`)")
        specs: dict[str, PipelineSpec] = {}
        for name, entry in entries.items():
            params = entry.get("parameters")
            if not isinstance(params, Mapping):
                raise CatalogError(f"manifest entry {name!r} has no 'parameters' (recompile the templates)")
            specs[name] = PipelineSpec(
                name=name,
                description=str(entry.get("description", "")),
                parameters=tuple(_from_manifest(n, p) for n, p in params.items()),
                source=str(entry.get("source", "")),
                template_uri=entry.get("template_uri"),
            )
        return cls(specs)


def template_parameters(template: Mapping[str, Any]) -> tuple[Parameter, ...]:
    """The typed inputs a compiled KFP template declares (``root.inputDefinitions.parameters``)."""
    declared = template.get("root", {}).get("inputDefinitions", {}).get("parameters", {}) or {}
    out = []
    for name, ir in declared.items():
        kind = IR_TYPES.get(str(ir.get("parameterType")))
        if kind is None:
            raise CatalogError(f"input {name!r} has an unsupported type {ir.get('parameterType')!r}")
        required = "defaultValue" not in ir and not ir.get("isOptional", False)
        default = ir.get("defaultValue")
        if kind == "int" and isinstance(default, float) and default.is_integer():
            default = int(default)  # the IR stores every number as a double
        out.append(
            _with_constraints(Parameter(name, kind, str(ir.get("description", "")), default, required))
        )
    return tuple(out)


def template_description(template: Mapping[str, Any]) -> str:
    info = template.get("pipelineInfo", {})
    return str(info.get("description") or template.get("root", {}).get("description") or "")


def manifest_parameters(params: tuple[Parameter, ...]) -> dict[str, Any]:
    return {p.name: p.to_dict() for p in params}


def _from_manifest(name: str, doc: Mapping[str, Any]) -> Parameter:
    kind = doc.get("type")
    if kind not in _PY_TYPES:
        raise CatalogError(f"parameter {name!r}: unknown type {kind!r}")
    param = Parameter(
        name, kind, str(doc.get("description", "")), doc.get("default"), bool(doc.get("required", False))
    )
    return _with_constraints(param)


def _with_constraints(param: Parameter) -> Parameter:
    """Read ``Range: a..b.`` and ``One of: x, y.`` from the description."""
    text = param.description
    minimum = maximum = None
    choices: tuple[str, ...] = ()
    found = _RANGE.search(text)
    if found and param.type in ("int", "float"):
        minimum = float(found.group(1)) if found.group(1) else None
        maximum = float(found.group(2)) if found.group(2) else None
    listed = _CHOICES.search(text)
    if listed and param.type == "str":
        choices = tuple(c.strip() for c in listed.group(1).split(",") if c.strip())
    if minimum is None and maximum is None and not choices:
        return param
    return Parameter(param.name, param.type, text, param.default, param.required, minimum, maximum, choices)


def _bounds(low: float | None, high: float | None) -> str:
    def show(x: float | None) -> str:
        return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))

    return f"{show(low)}..{show(high)}"
