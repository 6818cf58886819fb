"""The local launcher: same compiled template, kfp.local in a background worker, idempotent by job id."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from events.decision import RunRequest
from pipelines.launch.base import PermanentLaunchError, Templates
from pipelines.launch.local import TERMINAL_STATES, LocalLauncher, read_status

pytestmark = pytest.mark.slow


def wait(job_dir: Path, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = read_status(job_dir)
        if status.get("state") in TERMINAL_STATES:
            return status
        time.sleep(0.2)
    raise AssertionError(
        f"job did not finish: {read_status(job_dir)}; log: {(job_dir / 'worker.log').read_text()}"
    )


def test_local_job_runs_once_and_records_a_failure_with_its_task(gcs_env: str, tmp_path: Path) -> None:
    from pipelines.compile import compile_all

    templates = tmp_path / "templates"
    compile_all(templates, names=["evaluation"])
    launcher = LocalLauncher(tmp_path / "state", Templates(templates))
    request = RunRequest(
        pipeline="evaluation",
        job_id="evaluation-test-0001",
        parameters={"model_name": "no_such_model", "data_uri": str(tmp_path / "missing.csv")},
        labels={"mlops-rule": "test"},
        rule="test",
    )
    first = launcher.launch(request)
    assert first.status == "created"
    again = launcher.launch(request)
    assert again.status == "already_exists"

    job_dir = Path(first.job_name)
    status = wait(job_dir)
    assert status["state"] == "FAILED"
    assert status["failed_task"]
    assert status["error"]
    recorded = json.loads((job_dir / "request.json").read_text())
    assert recorded["template"] == str(templates / "evaluation.yaml")
    assert recorded["parameters"]["model_name"] == "no_such_model"


def test_missing_template_is_a_permanent_error(tmp_path: Path) -> None:
    launcher = LocalLauncher(tmp_path / "state", Templates(tmp_path / "empty"))
    request = RunRequest("training", "training-x-1", {}, {}, "r")
    with pytest.raises(PermanentLaunchError, match="no compiled template for pipeline 'training'"):
        launcher.launch(request)
