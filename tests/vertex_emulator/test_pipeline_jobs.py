"""PipelineService through Google's clients: jobs submitted with the SDK (``PipelineJob.submit``)
and the GAPIC client run under kfp.local and report what Vertex reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.emulators import FakeGcs
from tests.vertex_emulator import pipelines
from tests.vertex_emulator.conftest import PARENT, PROJECT, error_status, gapic, init_sdk, wait_until

pytestmark = pytest.mark.slow

JOB_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, storage_env: str) -> Iterator[Any]:
    from stack.vertex import VertexEmulator

    with VertexEmulator(tmp_path_factory.mktemp("vertex")) as emu:
        init_sdk(emu.url)
        yield emu


@pytest.fixture(scope="module")
def client(emulator: Any) -> Any:
    from google.cloud import aiplatform_v1

    return gapic(aiplatform_v1.PipelineServiceClient, emulator.url)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("templates")


def _job(
    spec: dict[str, Any], params: dict[str, Any], labels: dict[str, str], bucket: str = "emu-root"
) -> Any:
    from google.cloud import aiplatform_v1

    return aiplatform_v1.PipelineJob(
        display_name=spec["pipelineInfo"]["name"],
        pipeline_spec=spec,
        labels=labels,
        runtime_config={"gcs_output_directory": f"gs://{bucket}/root", "parameter_values": params},
    )


@pytest.fixture(scope="module")
def submitted(emulator: Any, client: Any, templates: Path) -> dict[str, Any]:
    """Every job of the module, submitted at once so that their workers run side by side."""
    from google.cloud import aiplatform

    jobs: dict[str, Any] = {}
    started = time.perf_counter()
    sdk_job = aiplatform.PipelineJob(
        display_name="two-steps-ok",
        template_path=str(pipelines.compile_to(pipelines.two_steps, templates)),
        job_id="two-steps-ok",
        pipeline_root="gs://emu-sdk-root-bucket/root",  # a bucket that does not exist yet
        parameter_values={"n": 4},
        labels={"suite": "emu", "outcome": "ok"},
        enable_caching=False,
    )
    # With a service account and a new bucket, submit() creates the bucket through
    # STORAGE_EMULATOR_HOST and makes no project-number lookup (which would retry for a minute).
    sdk_job.submit(service_account=f"runner@{PROJECT}.iam.gserviceaccount.com")
    jobs["ok"] = sdk_job
    jobs["submit_seconds"] = time.perf_counter() - started
    two = pipelines.spec(pipelines.two_steps, templates)
    jobs["failed"] = client.create_pipeline_job(
        parent=PARENT,
        pipeline_job=_job(two, {"fail": True}, {"suite": "emu", "outcome": "fail"}),
        pipeline_job_id="two-steps-fail",
    )
    names = [
        "VERTEX_API_ENDPOINT",
        "CLOUD_ML_PROJECT_ID",
        "CLOUD_ML_REGION",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_REGION",
        "STORAGE_EMULATOR_HOST",
    ]
    env = pipelines.spec(pipelines.environment, templates)
    jobs["env"] = client.create_pipeline_job(
        parent=PARENT,
        pipeline_job=_job(env, {"names": names}, {"suite": "other"}),
        pipeline_job_id="task-env",
    )
    nap = pipelines.spec(pipelines.sleepy, templates)
    jobs["sleepy"] = client.create_pipeline_job(
        parent=PARENT, pipeline_job=_job(nap, {"seconds": 120}, {"suite": "other"}), pipeline_job_id="sleepy"
    )
    return jobs


def _terminal(client: Any, name: str) -> Any:
    from google.cloud import aiplatform_v1

    done = {
        aiplatform_v1.PipelineState.PIPELINE_STATE_SUCCEEDED,
        aiplatform_v1.PipelineState.PIPELINE_STATE_FAILED,
        aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLED,
    }

    def check() -> Any:
        job = client.get_pipeline_job(name=name)
        return job if job.state in done else None

    return wait_until(check, JOB_TIMEOUT, f"{name} to finish", every=0.2)


def _tasks(job: Any) -> dict[str, Any]:
    return {t.task_name: t for t in job.job_detail.task_details}


def test_sdk_submitted_pipeline_succeeds_with_task_details(submitted: dict[str, Any], client: Any) -> None:
    from google.cloud import aiplatform_v1

    sdk_job = submitted["ok"]
    assert submitted["submit_seconds"] < 20, "submit() made slow hidden calls"
    assert sdk_job.resource_name.endswith("/pipelineJobs/two-steps-ok")
    job = _terminal(client, sdk_job.resource_name)
    assert job.state == aiplatform_v1.PipelineState.PIPELINE_STATE_SUCCEEDED, job.error
    assert sdk_job.state == aiplatform_v1.PipelineState.PIPELINE_STATE_SUCCEEDED  # the SDK reads it too
    assert job.create_time <= job.start_time <= job.end_time
    tasks = _tasks(job)
    assert set(tasks) == {"two-steps", "make-rows", "count-rows"}
    root = tasks["two-steps"]
    assert tasks["make-rows"].parent_task_id == root.task_id == tasks["count-rows"].parent_task_id
    for name in ("make-rows", "count-rows"):
        assert tasks[name].state == aiplatform_v1.PipelineTaskDetail.State.SUCCEEDED
        assert tasks[name].execution.state == aiplatform_v1.Execution.State.COMPLETE
    assert tasks["make-rows"].execution.metadata["input:n"] == 4
    assert tasks["make-rows"].execution.metadata["output:Output"] == "made"
    assert tasks["count-rows"].execution.metadata["output:Output"] == 4
    rows = tasks["make-rows"].outputs["rows"].artifacts[0]
    assert rows.schema_title == "system.Dataset"
    assert rows.metadata["rows"] == 4
    assert Path(rows.uri).read_text().count("\n") == 4  # kfp.local's local path, under the state dir
    assert job.runtime_config.gcs_output_directory == "gs://emu-sdk-root-bucket/root"
    assert job.service_account == f"runner@{PROJECT}.iam.gserviceaccount.com"


def test_failed_task_fails_the_job_naming_task_and_reason(submitted: dict[str, Any], client: Any) -> None:
    from google.cloud import aiplatform_v1

    job = _terminal(client, submitted["failed"].name)
    assert job.state == aiplatform_v1.PipelineState.PIPELINE_STATE_FAILED
    assert job.error.code == 9
    assert "count-rows" in job.error.message
    assert "ValueError: too few rows" in job.error.message
    tasks = _tasks(job)
    assert tasks["make-rows"].state == aiplatform_v1.PipelineTaskDetail.State.SUCCEEDED
    assert tasks["count-rows"].state == aiplatform_v1.PipelineTaskDetail.State.FAILED
    assert tasks["count-rows"].error.message.startswith("ValueError: too few rows")


def test_tasks_see_the_emulator_and_their_project(
    submitted: dict[str, Any], client: Any, emulator: Any, fake_gcs: FakeGcs
) -> None:
    job = _terminal(client, submitted["env"].name)
    seen = _tasks(job)["task-env"].execution.metadata["output:Output"]
    assert dict(seen) == {
        "VERTEX_API_ENDPOINT": emulator.url,
        "CLOUD_ML_PROJECT_ID": PROJECT,
        "CLOUD_ML_REGION": "us-central1",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "GOOGLE_CLOUD_REGION": "us-central1",
        "STORAGE_EMULATOR_HOST": fake_gcs.host,
    }


def test_repeated_job_id_is_a_conflict_with_status_already_exists(
    submitted: dict[str, Any], client: Any, templates: Path
) -> None:
    from google.api_core import exceptions

    two = pipelines.spec(pipelines.two_steps, templates)
    with pytest.raises(exceptions.Conflict) as caught:
        client.create_pipeline_job(
            parent=PARENT, pipeline_job=_job(two, {}, {}), pipeline_job_id="two-steps-fail"
        )
    assert error_status(caught.value) == "ALREADY_EXISTS"


def test_cancel_stops_a_running_job(submitted: dict[str, Any], client: Any) -> None:
    from google.cloud import aiplatform_v1

    name = submitted["sleepy"].name
    wait_until(
        lambda: "nap" in _tasks(client.get_pipeline_job(name=name)),
        JOB_TIMEOUT,
        "the nap task to start",
        every=0.2,
    )
    client.cancel_pipeline_job(name=name)
    assert client.get_pipeline_job(name=name).state in (
        aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLING,
        aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLED,
    )
    job = _terminal(client, name)
    assert job.state == aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLED
    assert _tasks(job)["nap"].state == aiplatform_v1.PipelineTaskDetail.State.CANCELLED
    assert job.end_time.timestamp() - job.start_time.timestamp() < 60  # not the 120 s of the nap


def test_list_filters_on_labels_and_state(submitted: dict[str, Any], client: Any) -> None:
    from google.cloud import aiplatform

    _terminal(client, submitted["failed"].name)
    _terminal(client, submitted["ok"].resource_name)
    emu_jobs = aiplatform.PipelineJob.list(filter='labels.suite="emu"')
    assert sorted(j.name for j in emu_jobs) == ["two-steps-fail", "two-steps-ok"]
    failed = client.list_pipeline_jobs(
        request={"parent": PARENT, "filter": 'labels.suite="emu" AND state="PIPELINE_STATE_FAILED"'}
    )
    assert [j.name.rsplit("/", 1)[-1] for j in failed] == ["two-steps-fail"]
    first = client.list_pipeline_jobs(request={"parent": PARENT, "page_size": 1})
    assert len(list(first.pages.__next__().pipeline_jobs)) == 1
    assert (
        len(list(client.list_pipeline_jobs(request={"parent": PARENT, "page_size": 1}))) == 4
    )  # pages followed


def test_undeclared_parameter_is_refused_at_create(client: Any, templates: Path) -> None:
    from google.api_core import exceptions

    two = pipelines.spec(pipelines.two_steps, templates)
    with pytest.raises(exceptions.BadRequest) as caught:
        client.create_pipeline_job(
            parent=PARENT, pipeline_job=_job(two, {"rows": 3}, {}), pipeline_job_id="bad-params"
        )
    assert error_status(caught.value) == "INVALID_ARGUMENT"
    assert "rows" in caught.value.message


def test_measure_two_task_job(
    submitted: dict[str, Any], client: Any, templates: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Create -> SUCCEEDED of a trivial 2-task job, with nothing else running (printed with -s)."""
    _terminal(client, submitted["ok"].resource_name)
    _terminal(client, submitted["failed"].name)
    two = pipelines.spec(pipelines.two_steps, templates)
    started = time.perf_counter()
    job = client.create_pipeline_job(
        parent=PARENT, pipeline_job=_job(two, {"n": 2}, {}), pipeline_job_id="measured"
    )
    done = _terminal(client, job.name)
    seconds = time.perf_counter() - started
    assert done.state.name == "PIPELINE_STATE_SUCCEEDED"
    with capsys.disabled():
        print(f"\n[measure] 2-task pipeline job create -> SUCCEEDED: {seconds:.2f} s")
