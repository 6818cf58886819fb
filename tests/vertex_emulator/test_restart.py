"""The state directory: a restart keeps models, finished jobs and endpoints (serving processes
started again); a job that was running when the emulator stopped has failed. And the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.vertex_emulator import pipelines
from tests.vertex_emulator.conftest import ECHO_SERVER, PARENT, gapic, init_sdk, wait_until

pytestmark = pytest.mark.slow


def _job(spec: dict[str, Any], params: dict[str, Any]) -> Any:
    from google.cloud import aiplatform_v1

    return aiplatform_v1.PipelineJob(
        pipeline_spec=spec, runtime_config={"gcs_output_directory": "gs://root/r", "parameter_values": params}
    )


def test_restart_keeps_models_jobs_and_deployments(tmp_path: Path, make_bucket: Callable[[], str]) -> None:
    from google.cloud import aiplatform, aiplatform_v1

    from stack.vertex import VertexEmulator

    state = tmp_path / "vertex"
    S = aiplatform_v1.PipelineState
    with VertexEmulator(state, serving_command=ECHO_SERVER, startup_timeout=20) as first:
        jobs = gapic(aiplatform_v1.PipelineServiceClient, first.url)
        done = jobs.create_pipeline_job(
            parent=PARENT,
            pipeline_job=_job(pipelines.spec(pipelines.two_steps, tmp_path), {"n": 2}),
            pipeline_job_id="finished",
        )
        running = jobs.create_pipeline_job(
            parent=PARENT,
            pipeline_job=_job(pipelines.spec(pipelines.sleepy, tmp_path), {"seconds": 300}),
            pipeline_job_id="running",
        )
        init_sdk(first.url, staging_bucket=make_bucket())
        model = aiplatform.Model.upload(
            display_name="kept", model_id="kept", artifact_uri="gs://models/kept", serving_container_image_uri="img:1",
        )  # fmt: skip
        endpoint = aiplatform.Endpoint.create(display_name="kept")
        endpoint.deploy(model, traffic_percentage=100, machine_type="n1-standard-2")
        wait_until(
            lambda: jobs.get_pipeline_job(name=done.name).state == S.PIPELINE_STATE_SUCCEEDED, 120, "the job"
        )
        wait_until(
            lambda: jobs.get_pipeline_job(name=running.name).job_detail.task_details, 120, "the nap task"
        )
        worker_pid = int((state / running.name / "worker.pid").read_text())
    with pytest.raises(ProcessLookupError):  # the stop stopped the worker
        import os

        os.kill(worker_pid, 0)

    with VertexEmulator(state, serving_command=ECHO_SERVER, startup_timeout=20) as second:
        jobs = gapic(aiplatform_v1.PipelineServiceClient, second.url)
        kept = jobs.get_pipeline_job(name=done.name)
        assert kept.state == S.PIPELINE_STATE_SUCCEEDED
        assert {t.task_name for t in kept.job_detail.task_details} == {"two-steps", "make-rows", "count-rows"}
        lost = jobs.get_pipeline_job(name=running.name)
        assert lost.state == S.PIPELINE_STATE_FAILED
        assert lost.error.message == "the emulator stopped while the job ran"
        init_sdk(second.url)
        assert aiplatform.Model("kept").uri == "gs://models/kept"
        again = aiplatform.Endpoint(endpoint.resource_name)
        prediction = again.predict(instances=[[1]])  # its serving process was started again
        assert prediction.model_version_id == "1"
        assert prediction.predictions[0]["storage_uri"] == "gs://models/kept"


def test_cli_prints_its_url_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops_cli.main",
            "emulator",
            "vertex",
            "--state-dir",
            str(tmp_path / "cli"),
            "--execute",
            "none",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = requests.get(f"{url}/v1/{PARENT}/endpoints", timeout=10)
        assert response.status_code == 200 and response.json() == {}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "cli" / "projects.json").exists()
