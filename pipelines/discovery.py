"""Where pipelines come from: every ``@dsl.pipeline`` under ``pipelines/definitions/``, and the
templates a rules file declares by reference (``pipelines:`` section).

A pipeline is one file: ``pipelines/definitions/<name>.py`` defining one ``@dsl.pipeline`` makes
pipeline ``<name>`` compiled and routable, with no other edit. Importing a definition imports kfp,
so this runs at build time only (compile, ``mlops-events pipelines``), never in a function.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from events.catalog import PIPELINE_NAME_RE, REGISTRY_TEMPLATE_RE

DEFINITIONS_PACKAGE: Final = "pipelines.definitions"

Kind = Literal["definition", "function", "template", "registry"]


class DiscoveryError(ValueError):
    """A definition module or a template reference that cannot be used; the message says why."""


@dataclass(frozen=True)
class Source:
    """One pipeline and where it comes from."""

    name: str
    kind: Kind
    ref: str  # module, "module:function", a template path, or an Artifact Registry URI

    def describe(self) -> str:
        return {
            "definition": f"pipelines/definitions/{self.ref.rsplit('.', 1)[-1]}.py",
            "function": f"rules: function {self.ref}",
            "template": f"rules: template {self.ref}",
            "registry": f"rules: Artifact Registry {self.ref}",
        }[self.kind]


def definitions() -> dict[str, Source]:
    """Every module of ``pipelines.definitions`` that defines a ``@dsl.pipeline``, by module name."""
    package = importlib.import_module(DEFINITIONS_PACKAGE)
    found: dict[str, Source] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module_name = f"{DEFINITIONS_PACKAGE}.{info.name}"
        if pipelines_in(importlib.import_module(module_name)):
            _check_name(info.name, f"{module_name}")
            found[info.name] = Source(info.name, "definition", module_name)
    return found


def pipelines_in(module: Any) -> list[Any]:
    """The pipelines a module itself defines (not those it imports)."""
    from kfp.dsl.graph_component import GraphComponent

    return [
        value
        for value in vars(module).values()
        if isinstance(value, GraphComponent)
        and getattr(value.pipeline_func, "__module__", None) == module.__name__
    ]


def load_pipeline(source: Source) -> Any:
    """The ``@dsl.pipeline`` object of a definition or ``module:function`` source."""
    if source.kind == "definition":
        found = pipelines_in(importlib.import_module(source.ref))
        if len(found) != 1:
            names = ", ".join(p.name for p in found)
            raise DiscoveryError(
                f"{source.describe()} defines {len(found)} pipelines ({names}): one file, one pipeline"
            )
        return found[0]
    if source.kind == "function":
        module_name, _, attr = source.ref.partition(":")
        try:
            value = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise DiscoveryError(f"pipeline {source.name}: cannot import {source.ref}: {exc}") from exc
        from kfp.dsl.graph_component import GraphComponent

        if not isinstance(value, GraphComponent):
            raise DiscoveryError(f"pipeline {source.name}: {source.ref} is not a @dsl.pipeline")
        return value
    raise DiscoveryError(f"pipeline {source.name} is a compiled template, not a function")


def referenced(declared: Mapping[str, Mapping[str, str]], base: Path) -> dict[str, Source]:
    """Sources of a rules file's ``pipelines:`` section (already shape-checked by the rules loader):
    ``{name: {"function": "pkg.mod:fn"}}`` or ``{name: {"template": PATH_OR_REGISTRY_URI}}``.
    Relative template paths are relative to the rules file's directory ``base``."""
    out: dict[str, Source] = {}
    for name, entry in declared.items():
        _check_name(name, "rules file pipelines:")
        if "function" in entry:
            out[name] = Source(name, "function", entry["function"])
        elif REGISTRY_TEMPLATE_RE.match(entry["template"]):
            out[name] = Source(name, "registry", entry["template"])
        else:
            path = Path(entry["template"])
            out[name] = Source(name, "template", str(path if path.is_absolute() else base / path))
    return out


def _check_name(name: str, where: str) -> None:
    if not PIPELINE_NAME_RE.match(name):
        raise DiscoveryError(
            f"{where}: pipeline name {name!r} must be lowercase letters, digits and '_' "
            "(starting with a letter, at most 40)"
        )
