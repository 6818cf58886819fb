"""Every pipeline compiles, the manifest carries what each template declares, and each spec
matches a golden file.

Regenerate the goldens after an intended change: ``UPDATE_GOLDEN=1 pytest tests/pipelines/test_compile.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from events.catalog import Catalog, template_parameters
from mlops_cli.main import main
from pipelines.compile import CompileError, compile_all
from pipelines.components.kfp_components import BASE_IMAGE
from pipelines.discovery import Source, definitions

GOLDEN = Path(__file__).parent / "golden"
VOLATILE = ("sdkVersion",)  # the kfp version that wrote the file
BUILT_IN = (
    "batch_prediction",
    "deployment",
    "evaluation",
    "monitoring",
    "retraining",
    "training",
    "training_stepwise",
)


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


def test_every_definition_module_is_a_pipeline() -> None:
    assert sorted(definitions()) == sorted(BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
def test_compiled_spec_matches_golden(compiled: tuple[Path, dict[str, Any]], name: str) -> None:
    out, _ = compiled
    actual = normalized((out / f"{name}.yaml").read_text())
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not golden.exists():
        golden.write_text(actual)
        if os.environ.get("UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden {golden} did not exist: written now, check it in")
    assert actual == golden.read_text(), f"{name}.yaml differs from its golden: UPDATE_GOLDEN=1 if intended"


def test_manifest_carries_what_each_template_declares(compiled: tuple[Path, dict[str, Any]]) -> None:
    import hashlib

    out, manifest = compiled
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert set(manifest["pipelines"]) == set(BUILT_IN)
    catalog = Catalog.from_manifest(manifest)
    for name, entry in manifest["pipelines"].items():
        assert entry["sha256"] == hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest()
        assert entry["source"] == f"pipelines/definitions/{name}.py"
        declared = template_parameters(yaml.safe_load((out / entry["file"]).read_text()))
        assert catalog[name].parameters == declared
        # Every input of a built-in pipeline is described (the docstring's Args:), for docs and errors.
        assert all(p.description for p in declared), [p.name for p in declared if not p.description]
    assert manifest["kfp_version"].startswith("2.")


def test_types_defaults_and_checks_come_from_the_template(compiled: tuple[Path, dict[str, Any]]) -> None:
    catalog = Catalog.from_manifest(compiled[1])
    training = catalog["training"]
    assert training.parameter("data_uri").required  # type: ignore[union-attr]
    seed = training.parameter("seed")
    assert seed is not None and seed.type == "int" and seed.default == 42 and not seed.required
    assert training.parameter("hyperparameters").type == "dict"  # type: ignore[union-attr]
    canary = catalog["deployment"].parameter("canary_percent")
    assert canary is not None and (canary.minimum, canary.maximum) == (1, 50)
    assert "must be int" in (canary.check("10") or "")
    assert "outside its range 1..50" in (canary.check(100) or "")
    assert "outside its range" in (canary.check(-50) or "")
    task = training.parameter("task")
    assert task is not None and task.choices == ("classification", "regression")
    assert "not a Vertex model id" in (training.parameter("model_name").check("../../x") or "")  # type: ignore[union-attr]


def test_templates_are_reproducible(compiled: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    _, again = compile_all(tmp_path)
    assert {n: e["sha256"] for n, e in again["pipelines"].items()} == {
        n: e["sha256"] for n, e in compiled[1]["pipelines"].items()
    }


def test_training_is_one_task_on_vertex(compiled: tuple[Path, dict[str, Any]]) -> None:
    out, _ = compiled
    for name, tasks in {"training": 1, "retraining": 1, "deployment": 1, "monitoring": 1}.items():
        spec = yaml.safe_load((out / f"{name}.yaml").read_text())
        assert len(spec["root"]["dag"]["tasks"]) == tasks, name
    stepwise = yaml.safe_load((out / "training_stepwise.yaml").read_text())
    assert len(stepwise["root"]["dag"]["tasks"]) == 7


def test_components_run_on_the_base_image_without_installing_anything(
    compiled: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = compiled
    for name in BUILT_IN:
        spec = yaml.safe_load((out / f"{name}.yaml").read_text())
        for executor in spec["deploymentSpec"]["executors"].values():
            container = executor["container"]
            assert container["image"] == BASE_IMAGE
            assert "pip install" not in " ".join(container["command"]), name


def test_cli_compile_writes_the_image_and_task_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compile", "--out", str(tmp_path), "--base-image", "example/img@sha256:" + "a" * 64]
    assert main([*args, "--env", "MLOPS_SERVING_RECORDS_URI=gs://b/r", "--pipeline", "training"]) == 0
    out = capsys.readouterr().out
    assert "training" in out and "sha256:" in out
    text = (tmp_path / "training.yaml").read_text()
    assert text.startswith("# PIPELINE DEFINITION")  # KFP's own header is kept
    spec = yaml.safe_load(text)
    containers = [e["container"] for e in spec["deploymentSpec"]["executors"].values()]
    assert {c["image"] for c in containers} == {"example/img@sha256:" + "a" * 64}
    for container in containers:
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {
            "MLOPS_SERVING_IMAGE": "example/img@sha256:" + "a" * 64,
            "MLOPS_SERVING_RECORDS_URI": "gs://b/r",
        }
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["base_image"] == "example/img@sha256:" + "a" * 64


def test_a_pipeline_input_that_carries_authority_is_refused(tmp_path: Path) -> None:
    template = {
        "pipelineInfo": {"name": "sneaky"},
        "root": {"inputDefinitions": {"parameters": {"service_account": {"parameterType": "STRING"}}}},
    }
    path = tmp_path / "sneaky.yaml"
    path.write_text(yaml.safe_dump(template))
    with pytest.raises(CompileError, match="service_account would let an event choose authority"):
        compile_all(
            tmp_path / "out", names=["sneaky"], extra={"sneaky": Source("sneaky", "template", str(path))}
        )


def test_a_compiled_template_from_elsewhere_is_copied_unchanged_with_its_inputs(
    compiled: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = compiled
    theirs = tmp_path / "theirs.yaml"
    theirs.write_bytes((out / "evaluation.yaml").read_bytes())
    _, manifest = compile_all(
        tmp_path / "out", names=["scoring"], extra={"scoring": Source("scoring", "template", str(theirs))}
    )
    entry = manifest["pipelines"]["scoring"]
    assert (tmp_path / "out" / "scoring.yaml").read_bytes() == theirs.read_bytes()
    assert entry["source"] == f"rules: template {theirs}"
    assert set(entry["parameters"]) == {"model_name", "version", "data_uri", "label_column", "trigger"}
