"""Compile every catalog pipeline to ``<name>.yaml`` plus ``manifest.json`` (build time, never per request).

Each compiled template's declared inputs are checked against the catalog (name, type, default,
required) so the router can never accept a parameter the template does not take, or the reverse.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pipelines.catalog import PIPELINES, Parameter, PipelineSpec

DEFAULT_OUT: Final = "build/templates"
MANIFEST: Final = "manifest.json"

# Catalog type -> KFP IR parameterType.
IR_TYPES: Final = {
    "str": "STRING",
    "int": "NUMBER_INTEGER",
    "float": "NUMBER_DOUBLE",
    "bool": "BOOLEAN",
    "list": "LIST",
    "dict": "STRUCT",
}


class CompileError(RuntimeError):
    """A pipeline failed to compile or its template disagrees with the catalog."""


@dataclass(frozen=True)
class Compiled:
    name: str
    path: Path
    sha256: str
    seconds: float


def template_inputs(template: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = template.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return params


def catalog_problems(spec: PipelineSpec, template: Mapping[str, Any]) -> list[str]:
    """Every difference between the catalog's parameters and the template's declared inputs."""
    declared = template_inputs(template)
    problems: list[str] = []
    catalog: dict[str, Parameter] = {p.name: p for p in spec.parameters}
    for name in sorted(set(catalog) - set(declared)):
        problems.append(f"{spec.name}: catalog parameter {name!r} is not an input of the template")
    for name in sorted(set(declared) - set(catalog)):
        problems.append(f"{spec.name}: template input {name!r} is not in the catalog")
    for name in sorted(set(catalog) & set(declared)):
        param, ir = catalog[name], declared[name]
        if ir.get("parameterType") != IR_TYPES[param.type]:
            problems.append(
                f"{spec.name}.{name}: catalog type {param.type} ({IR_TYPES[param.type]}) "
                f"but the template declares {ir.get('parameterType')}"
            )
        has_default = "defaultValue" in ir
        if param.required and has_default:
            problems.append(f"{spec.name}.{name}: required in the catalog but the template has a default")
        if not param.required:
            if not has_default:
                problems.append(
                    f"{spec.name}.{name}: optional in the catalog but the template has no default"
                )
            elif ir["defaultValue"] != param.default:
                problems.append(
                    f"{spec.name}.{name}: default {param.default!r} in the catalog, {ir['defaultValue']!r} in the template"
                )
    return problems


def _set_base_image(text: str, base_image: str) -> str:
    from pipelines.components.kfp_components import BASE_IMAGE

    return re.sub(rf"(?m)^(\s+image: ){re.escape(BASE_IMAGE)}$", lambda m: m.group(1) + base_image, text)


def compile_one(name: str, out_dir: Path, base_image: str | None = None) -> Compiled:
    import yaml
    from kfp import compiler

    from pipelines.definitions import pipeline_func

    spec = PIPELINES[name]
    path = out_dir / spec.template_file
    start = time.perf_counter()
    try:
        compiler.Compiler().compile(pipeline_func(name), str(path))
    except Exception as exc:
        raise CompileError(f"{name}: compile failed: {type(exc).__name__}: {exc}") from exc
    text = path.read_text(encoding="utf-8")
    if base_image:
        text = _set_base_image(text, base_image)
        path.write_text(text, encoding="utf-8")
    problems = catalog_problems(spec, yaml.safe_load(text))
    if problems:
        raise CompileError("template disagrees with pipelines/catalog.py:\n  " + "\n  ".join(problems))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Compiled(name, path, digest, time.perf_counter() - start)


def compile_all(
    out_dir: str | Path = DEFAULT_OUT, *, base_image: str | None = None, names: Iterable[str] | None = None
) -> tuple[list[Compiled], dict[str, Any]]:
    """Compile the pipelines (default: all) and write the manifest; returns both."""
    import kfp

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    compiled = [compile_one(name, out, base_image) for name in (names or PIPELINES)]
    manifest = {
        "kfp_version": kfp.__version__,
        "pipelines": {
            c.name: {
                "file": c.path.name,
                "sha256": c.sha256,
                "parameters": {
                    p.name: {"type": p.type, "required": p.required, "default": p.default}
                    for p in PIPELINES[c.name].parameters
                },
            }
            for c in compiled
        },
    }
    if base_image:
        manifest["base_image"] = base_image
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return compiled, manifest
