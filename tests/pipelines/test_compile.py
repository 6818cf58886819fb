"""Every pipeline compiles, its inputs equal the catalog's, and its spec matches a golden file.

Regenerate the goldens after an intended change: ``UPDATE_GOLDEN=1 pytest tests/pipelines/test_compile.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_cli.main import main
from pipelines.catalog import PIPELINES, Parameter, PipelineSpec
from pipelines.compile import catalog_problems, compile_all
from pipelines.components.kfp_components import BASE_IMAGE

GOLDEN = Path(__file__).parent / "golden"
VOLATILE = ("sdkVersion",)  # the kfp version that wrote the file


def normalized(text: str) -> str:
    spec = yaml.safe_load(text)
    for key in VOLATILE:
        spec.pop(key, None)
    return yaml.safe_dump(spec, sort_keys=True, width=1000)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("templates")
    _, manifest = compile_all(out)
    return out, manifest


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_compiled_spec_matches_golden(compiled: tuple[Path, dict[str, Any]], name: str) -> None:
    out, _ = compiled
    actual = normalized((out / f"{name}.yaml").read_text())
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not golden.exists():
        golden.write_text(actual)
        if os.environ.get("UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden {golden} did not exist: written now, check it in")
    assert actual == golden.read_text(), f"{name}.yaml differs from its golden: UPDATE_GOLDEN=1 if intended"


def test_manifest_lists_every_template_with_its_digest(compiled: tuple[Path, dict[str, Any]]) -> None:
    import hashlib

    out, manifest = compiled
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert set(manifest["pipelines"]) == set(PIPELINES)
    for name, entry in manifest["pipelines"].items():
        assert entry["sha256"] == hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest()
        assert set(entry["parameters"]) == {p.name for p in PIPELINES[name].parameters}
    assert manifest["kfp_version"].startswith("2.")


def test_templates_are_reproducible(compiled: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    _, again = compile_all(tmp_path)
    assert {n: e["sha256"] for n, e in again["pipelines"].items()} == {
        n: e["sha256"] for n, e in compiled[1]["pipelines"].items()
    }


def test_components_run_on_the_base_image_without_installing_anything(
    compiled: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = compiled
    for name in PIPELINES:
        spec = yaml.safe_load((out / f"{name}.yaml").read_text())
        for executor in spec["deploymentSpec"]["executors"].values():
            container = executor["container"]
            assert container["image"] == BASE_IMAGE
            assert "pip install" not in " ".join(container["command"]), name


def test_cli_compile_overrides_the_base_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["compile", "--out", str(tmp_path), "--base-image", "example/img:1", "--pipeline", "evaluation"])
        == 0
    )
    out = capsys.readouterr().out
    assert "evaluation" in out and "sha256:" in out
    spec = yaml.safe_load((tmp_path / "evaluation.yaml").read_text())
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {
        "example/img:1"
    }
    assert json.loads((tmp_path / "manifest.json").read_text())["base_image"] == "example/img:1"


def test_a_template_that_disagrees_with_the_catalog_is_reported(
    compiled: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = compiled
    template = yaml.safe_load((out / "evaluation.yaml").read_text())
    spec = PIPELINES["evaluation"]
    assert catalog_problems(spec, template) == []
    drifted = PipelineSpec(
        "evaluation",
        spec.description,
        (
            *[p for p in spec.parameters if p.name != "version"],
            Parameter("version", "int", "now an int", default=1),
            Parameter("extra", "str", "not in the template", default=""),
        ),
    )
    assert catalog_problems(drifted, template) == [
        "evaluation: catalog parameter 'extra' is not an input of the template",
        "evaluation.version: catalog type int (NUMBER_INTEGER) but the template declares STRING",
        "evaluation.version: default 1 in the catalog, 'champion' in the template",
    ]
