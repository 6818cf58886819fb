"""The catalog as the command line sees it: the manifest of a compiled templates directory.

The router's own types live in ``events.catalog`` (pure, with ``RESERVED_PARAMETERS``): the
catalog reaches ``events/`` as a value, read from what the templates declare. Tools that need
one and were given no templates directory compile the pipelines first (about a second).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from events.catalog import RESERVED_PARAMETERS, Catalog, CatalogError, Parameter, PipelineSpec
from events.rules import declared_pipelines

__all__ = [
    "RESERVED_PARAMETERS",
    "Catalog",
    "CatalogError",
    "Parameter",
    "PipelineSpec",
    "compiled_templates",
    "load_catalog",
]


def load_catalog(templates: Path) -> Catalog:
    """The catalog of a compiled templates directory."""
    path = Path(templates) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path} does not exist: run `mlops-events compile --out {templates}`") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path} is not JSON: {exc}") from None
    return Catalog.from_manifest(manifest)


def compiled_templates(templates: Path | None, rules_file: Path | None = None) -> Path:
    """``templates`` when given; else every pipeline (and those ``rules_file`` declares) compiled
    into a fresh temporary directory, so what a tool shows is what the code compiles to now."""
    if templates is not None:
        return templates
    from pipelines.compile import compile_all
    from pipelines.discovery import referenced

    extra = {}
    if rules_file is not None:
        declared = declared_pipelines(rules_file.read_text(encoding="utf-8"), source=str(rules_file))
        extra = referenced(declared, rules_file.parent)
    out = Path(tempfile.mkdtemp(prefix="mlops-templates-"))
    compile_all(out, extra=extra)
    return out
