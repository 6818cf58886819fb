"""``cloudbuild.yaml``: every step, image, argument and substitution, and each script step run here
(with fake docker/gcloud/make on PATH; the mlops-events commands are the real ones)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.fakes import install_fakes

ROOT = Path(__file__).resolve().parents[2]
BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
STEPS: list[dict[str, Any]] = BUILD["steps"]
BUILTINS = {"PROJECT_ID", "COMMIT_SHA", "BUILD_ID", "SHORT_SHA", "LOCATION", "PROJECT_NUMBER"}
REQUIRED = {
    "_REGION", "_DATA_BUCKET", "_PIPELINE_ROOT", "_TEMPLATES_BUCKET", "_FUNCTION_SA", "_PIPELINE_SA",
    "_TRIGGER_SA", "_ALERTS_TOPIC", "_RUN_REQUESTS_TOPIC", "_DEAD_LETTER_TOPIC", "_MIN_INSTANCES",
    "_MAX_INSTANCES", "_IMAGE_REPO",
}  # fmt: skip
_SUB_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
ORDER = [
    "install", "lint", "test", "resolve-image-repo", "build-image", "compile", "upload-templates",
    "bundle", "deploy-script", "deploy",
]  # fmt: skip


def _refs(text: str) -> set[str]:
    return {a or b for a, b in _SUB_RE.findall(text.replace("$$", ""))}


def _step_text(step: dict[str, Any]) -> str:
    return " ".join([step.get("entrypoint", ""), *step.get("args", [])])


def _step(step_id: str) -> dict[str, Any]:
    return next(s for s in STEPS if s["id"] == step_id)


def test_steps_are_named_ordered_and_sequential() -> None:
    assert [s["id"] for s in STEPS] == ORDER
    ids = [s["id"] for s in STEPS]
    assert ids.index("test") < ids.index("lint") + 2 < ids.index("deploy")
    assert all("waitFor" not in s for s in STEPS), "steps run one after another: tests gate the deploy"
    assert _step("lint")["args"] == ["lint"] and _step("test")["args"] == ["test-fast"]


def test_step_images_are_pinned() -> None:
    for step in STEPS:
        name = step["name"]
        repo, _, tag = name.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), (
            f"{step['id']}: {name} is not pinned"
        )


def test_every_substitution_used_is_declared_and_every_declared_one_is_used() -> None:
    declared = set(BUILD["substitutions"])
    assert declared >= REQUIRED
    used_in_steps = set().union(*(_refs(_step_text(s)) for s in STEPS))
    used = used_in_steps | set().union(*(_refs(str(v)) for v in BUILD["substitutions"].values()))
    assert {u for u in used if u.startswith("_")} <= declared
    assert declared <= used_in_steps, f"declared but unused: {declared - used_in_steps}"
    assert {u for u in used if not u.startswith("_")} <= BUILTINS
    assert BUILD["options"]["dynamicSubstitutions"] is True  # defaults refer to ${PROJECT_ID}
    assert BUILD["options"]["substitutionOption"] == "MUST_MATCH"


def test_the_image_is_referenced_by_digest_and_templates_by_content() -> None:
    build = _step_text(_step("build-image"))
    assert "components:$COMMIT_SHA" in build and "RepoDigests" in build and "@sha256:" in build
    compile_ = _step_text(_step("compile"))
    assert '--base-image "$$(cat build/image_ref)"' in compile_ and "--out build/templates" in compile_
    upload = _step_text(_step("upload-templates"))
    assert "--no-clobber" in upload and "sha256sum build/templates/manifest.json" in upload
    assert "latest" not in json.dumps(BUILD)
    assert "--templates build/templates" in _step_text(_step("bundle"))


def _substitute(text: str, values: dict[str, str]) -> str:
    out = _SUB_RE.sub(lambda m: values[m.group(1) or m.group(2)], text.replace("$$", "\0"))
    return out.replace("\0", "$")


def _values(project: str = "demo-project-1") -> dict[str, str]:
    base = {"PROJECT_ID": project, "COMMIT_SHA": "0123abcd", "BUILD_ID": "b1"}
    return {**base, **{k: _substitute(str(v), base) for k, v in BUILD["substitutions"].items()}}


def _script(step: dict[str, Any], values: dict[str, str]) -> list[str]:
    args = [_substitute(a, values) for a in step.get("args", [])]
    entry = step.get("entrypoint")
    return [entry, *args] if entry else args


def test_deploy_script_step_arguments_are_accepted_by_the_cli(tmp_path: Path) -> None:
    """The deploy-script step, substituted, runs here (as a dry run) and deploys with the same names
    as `gcp setup` would create by default."""
    argv = _script(_step("deploy-script"), _values())
    command = argv[2].replace(".venv/bin/mlops-events", "").split()
    assert command[:2] == ["gcp", "deploy-functions"]
    command = [c for c in command if not c.startswith("--script=")] + ["--dry-run"]
    from mlops_cli.main import main

    out = tmp_path / "out.txt"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(command) == 0
    out.write_text(buf.getvalue())
    script = out.read_text()
    assert "gcloud functions deploy mlops-on-new-data" in script
    assert "--trigger-bucket=demo-project-1-mlops-data" in script
    assert "PIPELINE_ROOT=gs://demo-project-1-mlops-pipeline-root/runs" in script


@pytest.mark.slow
def test_every_step_runs_locally(tmp_path: Path) -> None:
    """Each step's script, in a scratch /workspace, with fake make/docker/gcloud."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".venv").symlink_to(ROOT / ".venv")
    fake = install_fakes(tmp_path, recorders=("make", "docker"))
    env = fake.env()
    # The fake gcloud must know the repository that `gcp setup` would have created.
    state: dict[str, Any] = {"resources": {"artifacts repositories:mlops": {}}}
    fake.state.write_text(json.dumps(state))
    values = _values()
    for step in STEPS:
        argv = _script(step, values)
        proc = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"step {step['id']} failed:\n{proc.stdout}\n{proc.stderr}"

    image_ref = (workspace / "build/image_ref").read_text().strip()
    assert image_ref == "registry.invalid/demo-project-1/mlops/components@sha256:" + "ab" * 32
    manifest = json.loads((workspace / "build/templates/manifest.json").read_text())
    assert manifest.get("base_image") == image_ref
    assert (workspace / "build/bundle/main.py").is_file()
    calls = fake.calls()
    assert ["make", "install"] in calls and ["make", "lint"] in calls and ["make", "test-fast"] in calls
    assert any(c[:2] == ["docker", "push"] and c[2].endswith(":0123abcd") for c in calls)
    uploads = [c for c in calls if c[:2] == ["storage", "cp"]]
    assert uploads and re.search(r"/templates/sha256-[0-9a-f]{64}/$", uploads[0][-1])
    deploys = [c for c in calls if c[:2] == ["functions", "deploy"]]
    assert {next(a for a in c if a.startswith("--source=")) for c in deploys} == {"--source=build/bundle"}
    assert len(deploys) == 4
    shutil.rmtree(workspace / "build", ignore_errors=True)
    os.unlink(workspace / ".venv")
