"""``mlops-events pipelines``: every routable pipeline, with its parameters and where it comes from.

The list is the catalog the router validates against: the manifest of the compiled templates
(``--templates DIR``), or, without one, the pipelines compiled now (plus those ``--rules`` declares).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from events.catalog import Catalog, Parameter


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipelines",
        help="list every routable pipeline with its parameters and source",
        description="List the catalog: each pipeline, where it comes from, and the parameters its "
        "template declares (type, default, description, checks).",
    )
    p.add_argument("--templates", type=Path, help="compiled templates (default: compile now)")
    p.add_argument(
        "--rules",
        type=Path,
        default=Path(os.environ["MLOPS_CONFIG"]) if os.environ.get("MLOPS_CONFIG") else None,
        help="rules file whose pipelines: section adds pipelines (default: $MLOPS_CONFIG)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from events.errors import ConfigError
    from pipelines.catalog import CatalogError, compiled_templates, load_catalog
    from pipelines.compile import CompileError

    try:
        catalog = load_catalog(compiled_templates(args.templates, args.rules))
    except (CatalogError, CompileError, ConfigError, OSError) as exc:
        print(f"mlops-events pipelines: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(as_dict(catalog), indent=2, default=str))
    else:
        for line in describe(catalog):
            print(line)
    return 0


def as_dict(catalog: Catalog) -> dict[str, object]:
    return {
        name: {
            "source": spec.source,
            "description": spec.description,
            "template_uri": spec.template_uri,
            "parameters": {p.name: p.to_dict() for p in spec.parameters},
        }
        for name, spec in catalog.items()
    }


def describe(catalog: Catalog) -> list[str]:
    lines: list[str] = []
    for name, spec in catalog.items():
        lines.append(f"{name}  ({spec.source})")
        if spec.description:
            lines.append(f"  {spec.description}")
        for param in sorted(spec.parameters, key=lambda p: (not p.required, p.name)):
            lines.append(f"    {param.name:<18} {param.type:<5} {_default(param):<28} {param.description}")
        lines.append("")
    return lines


def _default(param: Parameter) -> str:
    if param.required:
        return "(required)"
    shown = json.dumps(param.default)
    return f"= {shown if len(shown) <= 25 else shown[:22] + '...'}"
