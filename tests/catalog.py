"""The built-in catalog for tests that must not import kfp: read from the golden templates
(tests/pipelines/golden, kept equal to what compile writes by tests/pipelines/test_compile.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from events import rules
from events.catalog import Catalog, PipelineSpec, template_description, template_parameters
from events.rules import RuleSet

GOLDEN = Path(__file__).parent / "pipelines" / "golden"


def golden_catalog() -> Catalog:
    specs = {}
    for path in sorted(GOLDEN.glob("*.yaml")):
        template = yaml.safe_load(path.read_text(encoding="utf-8"))
        specs[path.stem] = PipelineSpec(
            path.stem,
            template_description(template),
            template_parameters(template),
            f"pipelines/definitions/{path.stem}.py",
        )
    return Catalog(specs)


CATALOG = golden_catalog()


def load_rules(text: str, **options: Any) -> RuleSet:
    """``events.rules.load_rules`` with the built-in catalog unless another is given."""
    options.setdefault("catalog", CATALOG)
    return rules.load_rules(text, **options)
