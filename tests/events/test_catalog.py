"""The catalog is what the templates declare: types, defaults, descriptions and their checks."""

from __future__ import annotations

import pytest

from events.catalog import Catalog, CatalogError, Parameter, template_parameters
from events.errors import ConfigError
from events.rules import declared_pipelines
from tests.catalog import CATALOG, load_rules

TEMPLATE = {
    "pipelineInfo": {"name": "scoring", "description": "Score things."},
    "root": {
        "inputDefinitions": {
            "parameters": {
                "model_name": {"parameterType": "STRING", "description": "The model."},
                "depth": {
                    "parameterType": "NUMBER_INTEGER",
                    "defaultValue": 3.0,
                    "isOptional": True,
                    "description": "Tree depth. Range: 1..12.",
                },
                "ratio": {
                    "parameterType": "NUMBER_DOUBLE",
                    "defaultValue": 0.5,
                    "description": "Range: 0.1..0.9.",
                },
                "mode": {
                    "parameterType": "STRING",
                    "defaultValue": "fast",
                    "description": "One of: fast, exact.",
                },
                "tags": {"parameterType": "LIST", "defaultValue": []},
                "opts": {"parameterType": "STRUCT", "defaultValue": {}},
                "dry": {"parameterType": "BOOLEAN", "defaultValue": False},
            }
        }
    },
}


def test_types_defaults_and_requirements_are_read_from_the_template() -> None:
    params = {p.name: p for p in template_parameters(TEMPLATE)}
    assert params["model_name"] == Parameter("model_name", "str", "The model.", None, True)
    assert params["depth"].type == "int" and params["depth"].default == 3 and not params["depth"].required
    assert isinstance(params["depth"].default, int)  # the IR stores numbers as doubles
    assert [params[n].type for n in ("ratio", "tags", "opts", "dry")] == ["float", "list", "dict", "bool"]


def test_checks_are_read_from_the_descriptions() -> None:
    params = {p.name: p for p in template_parameters(TEMPLATE)}
    depth, ratio, mode = params["depth"], params["ratio"], params["mode"]
    assert (depth.minimum, depth.maximum) == (1, 12)
    assert depth.check(12) is None and "outside its range 1..12" in (depth.check(13) or "")
    assert (ratio.minimum, ratio.maximum) == (0.1, 0.9) and ratio.check(0.95) is not None
    assert mode.choices == ("fast", "exact") and "not one of: fast, exact" in (mode.check("slow") or "")
    assert "must be int, got bool" in (depth.check(True) or "")
    assert "must be int, got float" in (depth.check(2.5) or "")


@pytest.mark.parametrize("name", ["churn", "_tmp", "fraud-v2", "1234567890"])
def test_model_names_as_vertex_accepts_them(name: str) -> None:
    assert Parameter("model_name", "str").check(name) is None


@pytest.mark.parametrize("name", ["", "UPPER", "../../x", "-x", "a" * 64, "a b"])
def test_model_names_vertex_refuses(name: str) -> None:
    assert "not a Vertex model id" in (Parameter("model_name", "str").check(name) or "")


def test_a_manifest_without_parameters_is_refused_clearly() -> None:
    with pytest.raises(CatalogError, match="has no 'parameters'"):
        Catalog.from_manifest({"pipelines": {"x": {"file": "x.yaml"}}})
    with pytest.raises(CatalogError, match="run `mlops-events compile`"):
        Catalog.from_manifest({})


def test_rules_name_a_pipeline_declared_but_not_compiled() -> None:
    text = "pipelines:\n  scoring: {template: t.yaml}\nrules:\n- name: a\n  on: pubsub.message\n  skip: x\n"
    with pytest.raises(
        ConfigError, match=r"pipelines\.scoring: declared here but not in the compiled templates"
    ):
        load_rules(text, variables={})
    assert declared_pipelines(text) == {"scoring": {"template": "t.yaml"}}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{function: not-a-ref}", "is not MODULE:FUNCTION"),
        ("{template: 'https://us-central1-kfp.pkg.dev/p/r/pkg/latest'}", "must be pinned by digest"),
        ("{function: a:b, template: t.yaml}", "give exactly one of"),
        ("t.yaml", "give exactly one of"),
    ],
)
def test_pipelines_section_is_checked(entry: str, problem: str) -> None:
    text = f"pipelines:\n  mine: {entry}\nrules: []\n"
    with pytest.raises(ConfigError, match=problem):
        declared_pipelines(text)


def test_a_pinned_registry_template_is_accepted() -> None:
    uri = "https://us-central1-kfp.pkg.dev/p/r/pkg/sha256:" + "a" * 64
    assert declared_pipelines(f"pipelines:\n  mine: {{template: '{uri}'}}\nrules: []\n") == {
        "mine": {"template": uri}
    }


def test_the_golden_catalog_holds_the_built_in_pipelines() -> None:
    assert set(CATALOG) >= {
        "training",
        "retraining",
        "deployment",
        "monitoring",
        "evaluation",
        "batch_prediction",
    }
