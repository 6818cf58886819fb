"""The REST surface itself, sent raw: strict parsing of bodies and query strings, google.rpc
errors, unknown routes, operations, and the enum encoding the GAPIC REST clients ask for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.vertex_emulator.conftest import PARENT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from stack.vertex import VertexEmulator

    with VertexEmulator(tmp_path_factory.mktemp("vertex"), execute="none") as emu:
        yield emu.url


def _error(response: requests.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code
    return error


def test_unknown_field_in_a_body_is_invalid_argument_naming_it(url: str) -> None:
    response = requests.post(
        f"{url}/v1/{PARENT}/models:upload",
        json={"model": {"displayName": "m", "containerSpec": {"imageUri": "i", "imageURL": "typo"}}},
        timeout=10,
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == (
        "Invalid JSON payload received. Unknown name \"imageURL\" at 'model.container_spec': Cannot find field."
    )
    assert error["details"][0]["fieldViolations"][0]["field"] == "model.container_spec"


def test_unknown_field_in_a_resource_body_names_the_resource_field(url: str) -> None:
    response = requests.post(
        f"{url}/v1/{PARENT}/pipelineJobs?pipelineJobId=x", json={"displayName": "x", "retries": 3}, timeout=10
    )
    assert response.status_code == 400
    assert "Unknown name \"retries\" at 'pipeline_job'" in _error(response)["message"]


def test_wrong_type_and_bad_json_are_invalid_argument(url: str) -> None:
    wrong = requests.post(f"{url}/v1/{PARENT}/endpoints", json={"displayName": 7}, timeout=10)
    assert _error(wrong)["status"] == "INVALID_ARGUMENT"
    assert "displayName" in _error(wrong)["message"]
    broken = requests.post(f"{url}/v1/{PARENT}/endpoints", data=b"{not json", timeout=10)
    assert (broken.status_code, _error(broken)["status"]) == (400, "INVALID_ARGUMENT")


def test_unknown_query_parameter_is_refused(url: str) -> None:
    response = requests.get(f"{url}/v1/{PARENT}/models?pageSize=2&colour=red", timeout=10)
    assert response.status_code == 400
    assert 'Unknown name "colour": Cannot bind query parameter' in _error(response)["message"]
    ok = requests.get(f"{url}/v1/{PARENT}/models?pageSize=2&$alt=json;enum-encoding=int", timeout=10)
    assert ok.status_code == 200, ok.text


def test_unknown_route_is_not_found_naming_the_path(url: str) -> None:
    response = requests.get(f"{url}/v1/{PARENT}/trainingPipelines", timeout=10)
    assert response.status_code == 404
    error = _error(response)
    assert error["status"] == "NOT_FOUND"
    assert f"/v1/{PARENT}/trainingPipelines" in error["message"]
    missing = requests.get(f"{url}/v1/{PARENT}/models/nope", timeout=10)
    assert (missing.status_code, _error(missing)["status"]) == (404, "NOT_FOUND")


def test_long_running_operation_is_answered_like_the_api(url: str) -> None:
    created = requests.post(
        f"{url}/v1/{PARENT}/models:upload",
        json={
            "modelId": "m1",
            "model": {"displayName": "m1", "artifactUri": "gs://b/m1", "containerSpec": {"imageUri": "i"}},
        },
        timeout=10,
    )
    assert created.status_code == 200, created.text
    op = created.json()
    assert op["name"].startswith("projects/123456789012/locations/us-central1/models/m1/operations/")
    assert op["done"] is True
    assert (
        op["metadata"]["@type"]
        == "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelOperationMetadata"
    )
    again = requests.get(f"{url}/v1/{op['name']}", timeout=10).json()
    assert again["response"] == {
        "@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse",
        "model": "projects/123456789012/locations/us-central1/models/m1",
        "modelVersionId": "1",
    }
    # The caller's project id and the project number name the same resources.
    by_id = requests.get(f"{url}/v1/{PARENT}/models/m1@default", timeout=10)
    assert by_id.json()["name"] == "projects/123456789012/locations/us-central1/models/m1"


def test_non_gs_artifact_uri_is_refused(url: str) -> None:
    response = requests.post(
        f"{url}/v1/{PARENT}/models:upload",
        json={"model": {"displayName": "m", "artifactUri": "/tmp/model", "containerSpec": {"imageUri": "i"}}},
        timeout=10,
    )
    assert response.status_code == 400
    assert "gs://" in _error(response)["message"]


def test_enum_encoding_follows_the_alt_parameter(url: str) -> None:
    body = {"displayName": "j", "pipelineSpec": {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}}},
            "runtimeConfig": {"gcsOutputDirectory": "gs://b/r"}}  # fmt: skip
    named = requests.post(
        f"{url}/v1/{PARENT}/pipelineJobs?pipelineJobId=enum-names", json=body, timeout=10
    ).json()
    assert named["state"] == "PIPELINE_STATE_SUCCEEDED"  # execute="none"
    ints = requests.get(f"{url}/v1/{named['name']}?$alt=json;enum-encoding=int", timeout=10).json()
    assert ints["state"] == 4


def test_faults_on_create_and_stats(tmp_path_factory: pytest.TempPathFactory) -> None:
    from stack.vertex import Faults, VertexEmulator

    body = {"displayName": "j", "pipelineSpec": {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}}},
            "runtimeConfig": {"gcsOutputDirectory": "gs://b/r"}}  # fmt: skip
    faults = Faults(rate=1.0, kinds=("429",))
    with VertexEmulator(tmp_path_factory.mktemp("faulty"), execute="none", faults=faults) as emu:
        refused = requests.post(f"{emu.url}/v1/{PARENT}/pipelineJobs?pipelineJobId=a", json=body, timeout=10)
        assert (refused.status_code, _error(refused)["status"]) == (429, "RESOURCE_EXHAUSTED")
        emu.faults.kinds = ("timeout_after_create",)
        emu.faults.timeout_seconds = 0.3
        late = requests.post(f"{emu.url}/v1/{PARENT}/pipelineJobs?pipelineJobId=a", json=body, timeout=10)
        assert late.status_code == 200  # created, answered late: a client that timed out retries...
        emu.faults.rate = 0.0
        retried = requests.post(f"{emu.url}/v1/{PARENT}/pipelineJobs?pipelineJobId=a", json=body, timeout=10)
        assert _error(retried)["status"] == "ALREADY_EXISTS"  # ...and learns it was created
        assert (emu.stats.created, emu.stats.conflicts, emu.stats.requests) == (1, 1, 3)
        assert emu.stats.faults == {"429": 1, "timeout_after_create": 1}


def test_ephemeral_emulator_records_parsed_jobs_refuses_unknown_fields_and_injects_400() -> None:
    from stack.vertex import Faults, ephemeral_emulator

    spec = {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}, "inputDefinitions": {
        "parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}}}}  # fmt: skip
    body = {"displayName": "j", "pipelineSpec": spec, "labels": {"k": "v"},
            "runtimeConfig": {"gcsOutputDirectory": "gs://b/r", "parameterValues": {"n": 3}}}  # fmt: skip
    create = f"/v1/{PARENT}/pipelineJobs?pipelineJobId="
    with ephemeral_emulator(Faults(rate=1.0, kinds=("400",))) as emu:
        state_dir = emu.state_dir
        rejected = requests.post(f"{emu.url}{create}a", json=body, timeout=10)
        assert (rejected.status_code, _error(rejected)["status"]) == (400, "INVALID_ARGUMENT")
        emu.faults.rate = 0.0
        typo = requests.post(f"{emu.url}{create}a", json={**body, "runtimeConfg": {}}, timeout=10)
        assert 'Unknown name "runtimeConfg"' in _error(typo)["message"]  # refused before any fault
        assert requests.post(f"{emu.url}{create}a", json=body, timeout=10).status_code == 200
        ((job_id, job),) = emu.created_jobs().items()
        assert job_id == "a" and job["labels"] == {"k": "v"}
        assert job["runtimeConfig"]["parameterValues"] == {"n": 3.0}  # a google.protobuf.Value
        assert job["state"] == "PIPELINE_STATE_SUCCEEDED"  # execute="none": recorded, never run
        assert (emu.stats.create_calls, emu.stats.created, emu.stats.faults) == (2, 1, {"400": 1})
        emu.forget_pipeline_jobs()
        assert emu.created_jobs() == {} and emu.stats.create_calls == 0
        assert requests.post(f"{emu.url}{create}a", json=body, timeout=10).status_code == 200
    assert not state_dir.exists()  # the temporary state is gone with the emulator
    with pytest.raises(ValueError, match="unknown fault kinds"):
        Faults(kinds=("418",))
