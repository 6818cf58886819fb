"""Compile every pipeline to ``<name>.yaml`` plus ``manifest.json`` (build time, never per request).

The manifest is the catalog the router validates against: for each pipeline, its template file,
digest, source and the typed inputs the template itself declares (type, default, required,
description from the pipeline's docstring). Nothing is listed by hand, so a catalog can never
disagree with its template.

Deploy-time constants are written into the templates here, never left for a user to remember:
the components' image (``--base-image``, also the serving image) and task environment
(``MLOPS_SERVING_IMAGE`` and ``--env KEY=VALUE``). Templates from elsewhere (a compiled YAML, an
Artifact Registry template) are copied unchanged: their digest is what was reviewed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from events.catalog import (
    RESERVED_PARAMETERS,
    CatalogError,
    manifest_parameters,
    template_description,
    template_parameters,
)
from pipelines.discovery import DiscoveryError, Source, definitions, load_pipeline
from pipelines.images import BASE_IMAGE, SERVING_IMAGE_ENV

DEFAULT_OUT: Final = "build/templates"
MANIFEST: Final = "manifest.json"


class CompileError(RuntimeError):
    """A pipeline failed to compile, or its template cannot be routed to; the message says why."""


@dataclass(frozen=True)
class Compiled:
    name: str
    path: Path
    sha256: str
    seconds: float
    source: Source
    template: dict[str, Any]


def compile_all(
    out_dir: str | Path = DEFAULT_OUT,
    *,
    base_image: str | None = None,
    names: Iterable[str] | None = None,
    extra: Mapping[str, Source] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[list[Compiled], dict[str, Any]]:
    """Compile the pipelines (default: every definition plus ``extra``) and write the manifest."""
    import kfp

    sources = {**definitions(), **(extra or {})}
    wanted = list(names) if names else list(sources)
    unknown = [n for n in wanted if n not in sources]
    if unknown:
        raise CompileError(f"unknown pipeline(s) {', '.join(unknown)} (known: {', '.join(sources)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    task_env = {**({SERVING_IMAGE_ENV: base_image} if base_image else {}), **(env or {})}
    compiled = [compile_source(sources[n], out, base_image=base_image, env=task_env) for n in wanted]
    manifest: dict[str, Any] = {
        "kfp_version": kfp.__version__,
        "pipelines": {c.name: manifest_entry(c) for c in compiled},
    }
    if base_image:
        manifest["base_image"] = base_image
    if task_env:
        manifest["env"] = dict(task_env)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return compiled, manifest


def manifest_entry(compiled: Compiled) -> dict[str, Any]:
    template = compiled.template
    try:
        params = template_parameters(template)
    except CatalogError as exc:
        raise CompileError(f"{compiled.name}: {exc}") from exc
    entry: dict[str, Any] = {
        "file": compiled.path.name,
        "sha256": compiled.sha256,
        "source": compiled.source.describe(),
        "description": template_description(template),
        "parameters": manifest_parameters(params),
    }
    if compiled.source.kind == "registry":
        entry["template_uri"] = compiled.source.ref
    return entry


def compile_source(
    source: Source, out_dir: Path, *, base_image: str | None = None, env: Mapping[str, str] | None = None
) -> Compiled:
    path = out_dir / f"{source.name}.yaml"
    start = time.perf_counter()
    if source.kind in ("definition", "function"):
        _compile_function(source, path)
        text = _set_deploy_constants(path.read_text(encoding="utf-8"), base_image, env or {})
        path.write_text(text, encoding="utf-8")
    elif source.kind == "template":
        _copy_template(source, path)
    else:
        _download_template(source, path)
    text = path.read_text(encoding="utf-8")
    template = _first_document(text, source)
    reserved = sorted(
        set(template.get("root", {}).get("inputDefinitions", {}).get("parameters", {})) & RESERVED_PARAMETERS
    )
    if reserved:
        raise CompileError(
            f"{source.describe()}: input(s) {', '.join(reserved)} would let an event choose authority "
            "(project, region, service account, pipeline root, template...): rename them"
        )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Compiled(source.name, path, digest, time.perf_counter() - start, source, template)


def _compile_function(source: Source, path: Path) -> None:
    from kfp import compiler

    try:
        compiler.Compiler().compile(load_pipeline(source), str(path))
    except DiscoveryError as exc:
        raise CompileError(str(exc)) from exc
    except Exception as exc:
        raise CompileError(f"{source.describe()}: compile failed: {type(exc).__name__}: {exc}") from exc


def _copy_template(source: Source, path: Path) -> None:
    origin = Path(source.ref)
    if not origin.is_file():
        raise CompileError(f"pipeline {source.name}: no compiled template at {origin}")
    shutil.copyfile(origin, path)


def _download_template(source: Source, path: Path) -> None:
    """An Artifact Registry KFP template, with kfp's own registry client (Google credentials)."""
    from kfp.registry import RegistryClient

    host, package, version = _registry_parts(source.ref)
    try:
        RegistryClient(host=host).download_pipeline(package, version=version, file_name=str(path))
    except Exception as exc:  # the client raises requests' and google.auth's errors
        raise CompileError(f"pipeline {source.name}: cannot download {source.ref}: {exc}") from exc


def _registry_parts(uri: str) -> tuple[str, str, str]:
    """``https://R-kfp.pkg.dev/P/REPO/PKG/sha256:D`` -> (host, package, version)."""
    head, package, version = uri.rsplit("/", 2)
    return head, package, version


def _first_document(text: str, source: Source) -> dict[str, Any]:
    import yaml

    docs = [d for d in yaml.safe_load_all(text) if d]
    if not docs or not isinstance(docs[0], dict) or "root" not in docs[0] or "pipelineInfo" not in docs[0]:
        raise CompileError(f"{source.describe()}: not a compiled KFP pipeline (no root/pipelineInfo)")
    first: dict[str, Any] = docs[0]
    return first


def _set_deploy_constants(text: str, base_image: str | None, env: Mapping[str, str]) -> str:
    """Rewrite every executor's image and add task environment, keeping KFP's own layout: the
    comment header it writes, then ``yaml.dump_all(..., sort_keys=True)`` as KFP does."""
    if not base_image and not env:
        return text
    import yaml

    lines = text.splitlines(keepends=True)
    header = "".join(line for line in _leading_comments(lines))
    docs = list(yaml.safe_load_all(text))
    executors = docs[0].get("deploymentSpec", {}).get("executors", {})
    for executor in executors.values():
        container = executor.get("container")
        if container is None:
            continue
        if base_image and container.get("image") == BASE_IMAGE:
            container["image"] = base_image
        if env:
            kept = [e for e in container.get("env", []) if e.get("name") not in env]
            container["env"] = kept + [{"name": k, "value": v} for k, v in sorted(env.items())]
    return header + yaml.dump_all(docs, sort_keys=True)


def _leading_comments(lines: list[str]) -> Iterable[str]:
    for line in lines:
        if not line.startswith("#"):
            return
        yield line
