"""Runtime parameters of a pipeline job checked against the template, as Vertex checks them at
create: a parameter the pipeline does not declare, or a required one that is missing, is
refused; values are typed by the template's ``parameterType`` (JSON numbers arrive as floats:
an integer parameter takes only integral numbers).

No heavy imports: the pipeline worker uses this too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def input_definitions(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    root = spec.get("root") or {}
    params = (root.get("inputDefinitions") or {}).get("parameters") or {}
    return {str(k): v for k, v in params.items() if isinstance(v, Mapping)}


def _typed(name: str, kind: str, value: Any) -> Any:
    if kind == "NUMBER_INTEGER":
        if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
            raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")
        return int(value)
    if kind == "NUMBER_DOUBLE":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"parameter {name!r} must be a number, got {value!r}")
        return float(value)
    if kind == "STRING":
        if not isinstance(value, str):
            raise ValueError(f"parameter {name!r} must be a string, got {value!r}")
        return value
    if kind == "BOOLEAN":
        if not isinstance(value, bool):
            raise ValueError(f"parameter {name!r} must be a boolean, got {value!r}")
        return value
    if kind == "LIST":
        if not isinstance(value, list):
            raise ValueError(f"parameter {name!r} must be a list, got {value!r}")
        return value
    if kind == "STRUCT":
        if not isinstance(value, dict):
            raise ValueError(f"parameter {name!r} must be an object, got {value!r}")
        return value
    return value


def resolve(spec: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(arguments with defaults filled in and values typed, problems)."""
    definitions = input_definitions(spec)
    problems: list[str] = []
    unknown = sorted(set(values) - set(definitions))
    if unknown:
        problems.append(
            f"the pipeline does not declare parameter(s) {unknown} (declared: {sorted(definitions)})"
        )
    args: dict[str, Any] = {}
    for name, definition in definitions.items():
        kind = str(definition.get("parameterType", ""))
        if name in values and values[name] is not None:
            value = values[name]
        elif "defaultValue" in definition:
            value = definition["defaultValue"]
        elif definition.get("isOptional"):
            continue
        else:
            problems.append(f"required parameter {name!r} ({kind or 'untyped'}) has no value")
            continue
        try:
            args[name] = _typed(name, kind, value)
        except ValueError as exc:
            problems.append(str(exc))
    return args, problems
