"""docs/your-pipeline.md, followed to the letter in a fresh copy of the repository: the files it
shows are written from its own code blocks (a block whose info string names a path), and its
commands are run in order, from its own ``bash`` blocks, in a shell with nothing of Google Cloud
configured. Nothing else is edited, so a step that needs an edit the guide does not show fails
here; so does a guide whose commands or files drift from the code.

What the guide says each command shows is checked as well. ``status`` is polled (``--json``)
until what the guide says it shows is there, as a reader would run it again.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import until

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "your-pipeline.md"
_BLOCK = re.compile(r"^```(\w+)(?: +(\S+))?\n(.*?)^```$", re.S | re.M)
# Settings a developer's shell may hold that would point the commands elsewhere.
_CLEARED = (
    "STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "MLOPS_PUBSUB_PUSH_URL", "VERTEX_API_ENDPOINT",
    "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_REGION", "MLOPS_STAGING_BUCKET", "MLOPS_SERVING_RECORDS_URI",
    "MLOPS_CONFIG", "MLOPS_STATE_DIR", "PIPELINE_ROOT", "CLOUD_ML_PROJECT_ID",
)  # fmt: skip


def guide_blocks() -> tuple[dict[str, str], list[str]]:
    """The files the guide shows (path -> text) and its commands, in order."""
    files: dict[str, str] = {}
    commands: list[str] = []
    for language, path, body in _BLOCK.findall(GUIDE.read_text(encoding="utf-8")):
        if path:
            files[path] = body
        elif language == "bash":
            commands += [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
    return files, commands


def copy_repository(dest: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    if words[0] == "mlops-events":
        return [sys.executable, "-m", "mlops_cli", *words[1:]]
    assert words[0] == "python", f"the guide runs {words[0]!r}: only python and mlops-events are expected"
    return [sys.executable, *words[1:]]


def test_the_guide_works_as_written(tmp_path: Path) -> None:
    files, commands = guide_blocks()
    assert set(files) == {"pipelines/definitions/quick_training.py", "my-rules.yaml", "quick-event.json"}
    repo = tmp_path / "repo"
    copy_repository(repo)
    assert not (repo / "pipelines/definitions/quick_training.py").exists()
    for path, text in files.items():
        (repo / path).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    # The copy's packages, not the development checkout's; no credentials to find.
    env.update(PYTHONPATH=str(repo), GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "no-credentials.json"))

    def run(command: str) -> str:
        done = subprocess.run(_argv(command), cwd=repo, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, (
            f"`{command}` failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    def status() -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(run("mlops-events status --json"))
        return doc

    def runs(doc: dict[str, Any], pipeline: str) -> list[dict[str, Any]]:
        return [r for r in doc.get("runs", []) if r["pipeline"] == pipeline]

    def finished(doc: dict[str, Any], pipeline: str) -> dict[str, Any] | None:
        done = any(r["state"] in ("SUCCEEDED", "FAILED", "CANCELLED") for r in runs(doc, pipeline))
        return doc if done else None

    def started(doc: dict[str, Any], pipeline: str) -> dict[str, Any] | None:
        return doc if runs(doc, pipeline) else None

    statuses = 0
    try:
        for command in commands:
            verb = shlex.split(command)[1] if command.startswith("mlops-events") else "python"
            if verb == "status":
                statuses += 1
                if statuses == 1:  # the training is done, its version waits, nothing deployed
                    doc = until("quick_training to finish", lambda: finished(status(), "quick_training"), 120)
                    assert [r["state"] for r in runs(doc, "quick_training")] == ["SUCCEEDED"], doc["runs"]
                    assert doc["models"]["churn@1"]["aliases"] == ["challenger"], doc["models"]
                    assert runs(doc, "deployment") == []
                else:  # the approval's registry event launched the deployment of v1
                    doc = until("the deployment run", lambda: started(status(), "deployment"), 60)
                    assert "champion" in doc["models"]["churn@1"]["aliases"]
                continue
            out = run(command)
            if verb == "compile":
                assert re.search(r"quick_training +pipelines/definitions/quick_training\.py", out), out
            elif verb == "pipelines":
                assert "Share of the rows held out for evaluation. Range: 0.05..0.5." in out, out
            elif verb == "route":
                assert "LAUNCH: rule quick-training-data matched" in out, out
                assert re.search(r'label_column +"churned" +models: \'churn\'', out), out
                assert re.search(r'promotion +"manual" +models: \'churn\'', out), out
                assert re.search(r"holdout +0\.3 +rule quick-training-data", out), out
            elif verb == "run":
                assert "quick_training: SUCCEEDED" in out and "promoted: False" in out, out
                assert "awaiting approval (mlops-events promote)" in out, out
            elif verb == "promote":
                assert "approved v1 of churn by " in out and "champion moved from no champion to v1" in out
        assert statuses == 2 and commands[-1] == "mlops-events down"
    finally:
        if (repo / ".mlops-local" / "stack.json").exists():
            subprocess.run(_argv("mlops-events down"), cwd=repo, env=env, capture_output=True, timeout=120)
