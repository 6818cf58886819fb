"""ModelService, EndpointService and PredictionService through the SDK over REST: uploads with
versions and aliases (and the audit-log events Eventarc would deliver), deployments with a
traffic split, predictions reaching the right serving process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.vertex_emulator.conftest import (
    ECHO_SERVER,
    PARENT,
    PROJECT,
    Received,
    error_status,
    init_sdk,
    parse_audit,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator(
    tmp_path_factory: pytest.TempPathFactory, receiver: tuple[str, Received], make_bucket: Callable[[], str]
) -> Iterator[Any]:
    from stack.vertex import VertexEmulator

    url, _ = receiver
    with VertexEmulator(
        tmp_path_factory.mktemp("vertex"),
        audit_events_url=url,
        serving_command=ECHO_SERVER,
        startup_timeout=20,
    ) as emu:
        init_sdk(emu.url, staging_bucket=make_bucket())
        yield emu


@pytest.fixture(scope="module")
def churn(emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Model ``churn``: version 1 uploaded from a local directory (the SDK stages it to the
    staging bucket), version 2 with alias ``challenger``, not default."""
    from google.cloud import aiplatform

    artifacts = tmp_path_factory.mktemp("model")
    (artifacts / "model.joblib").write_bytes(b"not really a model")
    v1 = aiplatform.Model.upload(
        display_name="churn",
        model_id="churn",
        artifact_uri=str(artifacts),
        serving_container_image_uri="europe-docker.pkg.dev/p/serving:1",
        serving_container_environment_variables={"ECHO_TAG": "v1 of $(AIP_ENDPOINT_ID)"},
        labels={"team": "growth"},
    )
    v2 = aiplatform.Model.upload(
        display_name="churn",
        parent_model=v1.resource_name,
        artifact_uri="gs://models/churn/2",
        serving_container_image_uri="europe-docker.pkg.dev/p/serving:1",
        serving_container_environment_variables={"ECHO_TAG": "v2"},
        version_aliases=["challenger"],
        is_default_version=False,
    )
    return {"v1": v1, "v2": v2, "name": v1.resource_name}


def test_upload_versions_and_get_by_version_alias_and_default(churn: dict[str, Any]) -> None:
    from google.cloud import aiplatform

    name = churn["name"]
    assert name == "projects/123456789012/locations/us-central1/models/churn"  # named by project number
    v1 = aiplatform.Model(f"{name}@1")
    assert v1.uri.startswith("gs://") and "vertex_ai_auto_staging" in v1.uri  # staged by the SDK
    assert v1.version_aliases == ["default"]
    assert v1.labels == {"team": "growth"}
    assert aiplatform.Model(f"{name}@challenger").version_id == "2"
    assert aiplatform.Model(name).version_id == "1"  # no version: the default one
    assert aiplatform.Model(f"{name}@2").uri == "gs://models/churn/2"
    versions = aiplatform.models.ModelRegistry(name).list_versions()
    assert [(v.version_id, sorted(v.version_aliases)) for v in versions] == [
        ("1", ["default"]),
        ("2", ["challenger"]),
    ]


def test_generated_model_ids_are_numeric_and_resolve(emulator: Any) -> None:
    from google.cloud import aiplatform

    model = aiplatform.Model.upload(
        display_name="console-made", artifact_uri="gs://models/x", serving_container_image_uri="img:1"
    )
    model_id = model.resource_name.rsplit("/", 1)[-1]
    assert model_id.isdigit() and len(model_id) == 19
    assert aiplatform.Model(model_id).display_name == "console-made"  # a bare numeric id resolves
    assert [m.display_name for m in aiplatform.Model.list(filter='display_name="console-made"')] == [
        "console-made"
    ]


def test_alias_moves_and_audit_events_parse_as_registry_events(
    churn: dict[str, Any], receiver: tuple[str, Received]
) -> None:
    from google.cloud import aiplatform

    from events.model import ModelRegistryEvent

    _, received = receiver
    name = churn["name"]
    registry = aiplatform.models.ModelRegistry(name)
    registry.add_version_aliases(["champion"], version="1")
    registry.add_version_aliases(["champion"], version="2")  # moves: leaves version 1
    assert aiplatform.Model(f"{name}@champion").version_id == "2"
    assert aiplatform.Model(f"{name}@1").version_aliases == ["default"]
    registry.remove_version_aliases(["challenger"], version="2")
    assert sorted(aiplatform.Model(f"{name}@2").version_aliases) == ["champion"]

    def churn_events() -> list[Any]:
        events = [parse_audit(h, b) for h, b in received.wait_for(0)]
        found = [e for e in events if isinstance(e, ModelRegistryEvent) and e.model_id == "churn"]
        return found if len(found) >= 5 else []

    registry_events = wait_until(churn_events, 10, "the five audit events of churn")
    summary = [(e.method, e.version, e.aliases, e.removed_aliases) for e in registry_events]
    assert summary == [
        ("UploadModel", "1", ("default",), ()),
        ("UploadModel", "2", ("challenger",), ()),
        ("MergeVersionAliases", "1", ("champion",), ()),
        ("MergeVersionAliases", "2", ("champion",), ()),
        ("MergeVersionAliases", "2", (), ("challenger",)),
    ]
    assert {e.audit.principal for e in registry_events} == {
        "vertex-emulator@local-project.iam.gserviceaccount.com"
    }
    assert all(e.audit.context.type == "google.cloud.audit.log.v1.written" for e in registry_events)


def test_principal_header_names_who_moved_an_alias(
    emulator: Any, churn: dict[str, Any], receiver: tuple[str, Received]
) -> None:
    import requests

    _, received = receiver
    response = requests.post(
        f"{emulator.url}/v1/{churn['name']}@1:mergeVersionAliases",
        json={"versionAliases": ["reviewed"]},
        headers={"x-mlops-principal": "alice@example.com"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert "reviewed" in response.json()["versionAliases"]

    def reviewed() -> list[Any]:
        events = [parse_audit(h, b) for h, b in received.wait_for(0)]
        return [e for e in events if getattr(e, "aliases", ()) == ("reviewed",)]

    (event,) = wait_until(reviewed, 10, "the audit event of the reviewed alias")
    assert event.audit.principal == "alice@example.com"


def test_default_alias_cannot_be_removed_and_bad_aliases_are_refused(churn: dict[str, Any]) -> None:
    from google.api_core import exceptions
    from google.cloud import aiplatform

    registry = aiplatform.models.ModelRegistry(churn["name"])
    with pytest.raises(exceptions.BadRequest, match="default alias cannot be removed"):
        registry.remove_version_aliases(["default"], version="1")
    with pytest.raises(exceptions.BadRequest, match="Invalid version alias"):
        registry.add_version_aliases(["Champion"], version="1")


def test_delete_version_rules(emulator: Any, churn: dict[str, Any]) -> None:
    from google.api_core import exceptions
    from google.cloud import aiplatform

    name = churn["name"]
    v3 = aiplatform.Model.upload(
        display_name="churn", parent_model=name, artifact_uri="gs://models/churn/3", serving_container_image_uri="img:1",
        version_aliases=["temp"], is_default_version=False,
    )  # fmt: skip
    registry = aiplatform.models.ModelRegistry(name)
    with pytest.raises(exceptions.BadRequest, match="holds aliases") as caught:
        registry.delete_version(v3.version_id)
    assert error_status(caught.value) == "FAILED_PRECONDITION"
    registry.remove_version_aliases(["temp"], version=v3.version_id)
    registry.delete_version(v3.version_id)
    assert [v.version_id for v in registry.list_versions()] == ["1", "2"]
    with pytest.raises(exceptions.NotFound):
        aiplatform.Model(f"{name}@{v3.version_id}")


def test_update_model_labels_and_description(churn: dict[str, Any]) -> None:
    from google.cloud import aiplatform

    model = aiplatform.Model(f"{churn['name']}@2")
    model.update(description="churn classifier", labels={"stage": "candidate"})
    again = aiplatform.Model(f"{churn['name']}@2")
    assert again.description == "churn classifier"
    assert again.labels["stage"] == "candidate"


def test_deploy_with_traffic_split_predict_and_undeploy(
    emulator: Any, churn: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from google.cloud import aiplatform

    name = churn["name"]
    endpoint = aiplatform.Endpoint.create(display_name="churn-endpoint")
    started = time.perf_counter()
    endpoint.deploy(aiplatform.Model(f"{name}@1"), traffic_percentage=100, machine_type="n1-standard-2")
    deploy_seconds = time.perf_counter() - started
    (first,) = endpoint.list_models()
    assert first.model_version_id == "1"
    only_v1 = endpoint.predict(instances=[[1, 2]])
    assert only_v1.deployed_model_id == first.id
    (prediction,) = only_v1.predictions
    endpoint_id = endpoint.resource_name.rsplit("/", 1)[-1]
    assert prediction["deployed_model_id"] == first.id  # the process saw AIP_DEPLOYED_MODEL_ID
    assert prediction["endpoint_id"] == endpoint_id
    assert prediction["storage_uri"] == aiplatform.Model(f"{name}@1").uri  # AIP_STORAGE_URI = artifactUri
    assert prediction["echo_tag"] == f"v1 of {endpoint_id}"  # containerSpec.env, $(VAR) expanded
    assert prediction["vertex_api_endpoint"] == emulator.url
    assert prediction["instance"] == [1, 2]

    endpoint.deploy(aiplatform.Model(f"{name}@2"), traffic_percentage=40, machine_type="n1-standard-2")
    by_version = {m.model_version_id: m.id for m in endpoint.list_models()}
    assert endpoint.traffic_split == {by_version["1"]: 60, by_version["2"]: 40}
    seen = {endpoint.predict(instances=[[i]]).model_version_id for i in range(40)}
    assert seen == {"1", "2"}
    response = endpoint.predict(instances=[[0]])
    assert response.predictions[0]["echo_tag"] == (
        "v2" if response.model_version_id == "2" else f"v1 of {endpoint_id}"
    )

    import requests

    raw = requests.post(
        f"{emulator.url}/v1/{endpoint.resource_name}:rawPredict", json={"instances": [[7]]}, timeout=10
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["predictions"][0]["deployed_model_id"] == raw.headers["X-Vertex-AI-Deployed-Model-Id"]

    endpoint.update(traffic_split={by_version["1"]: 0, by_version["2"]: 100})
    assert {endpoint.predict(instances=[[i]]).model_version_id for i in range(5)} == {"2"}
    endpoint.undeploy(by_version["1"])
    assert endpoint.traffic_split == {by_version["2"]: 100}
    assert [m.model_version_id for m in endpoint.list_models()] == ["2"]
    assert aiplatform.Model(f"{name}@1").gca_resource.deployed_models == []
    with capsys.disabled():
        print(f"\n[measure] deploy (create -> healthy, SDK call): {deploy_seconds:.2f} s")


def test_traffic_split_is_validated(emulator: Any, churn: dict[str, Any]) -> None:
    from google.api_core import exceptions
    from google.cloud import aiplatform

    endpoint = aiplatform.Endpoint.create(display_name="validation")
    endpoint.deploy(
        aiplatform.Model(f"{churn['name']}@1"), traffic_percentage=100, machine_type="n1-standard-2"
    )
    (deployed,) = endpoint.list_models()
    with pytest.raises(exceptions.BadRequest, match="add up to 100"):
        endpoint.update(traffic_split={deployed.id: 50})
    with pytest.raises(exceptions.BadRequest, match="not deployed"):
        endpoint.update(traffic_split={deployed.id: 50, "123": 50})
    with pytest.raises(exceptions.BadRequest, match="deployed to"):
        aiplatform.models.ModelRegistry(churn["name"]).delete_version("1")  # deployed: refused
    endpoint.undeploy_all()
    endpoint.delete()
    with pytest.raises(exceptions.NotFound):
        aiplatform.Endpoint(endpoint.resource_name).list_models()  # the SDK's constructor does not GET


def test_a_serving_process_that_exits_fails_the_deploy_with_its_log(emulator: Any, tmp_path: Path) -> None:
    from google.api_core import exceptions
    from google.cloud import aiplatform

    broken = aiplatform.Model.upload(
        display_name="broken", artifact_uri="gs://models/broken", serving_container_image_uri="img:1",
        serving_container_environment_variables={"ECHO_FAIL": "exit"},
    )  # fmt: skip
    endpoint = aiplatform.Endpoint.create(display_name="broken")
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        endpoint.deploy(broken, traffic_percentage=100, machine_type="n1-standard-2")
    message = str(caught.value)
    assert "exited with code 3" in message
    assert "echo server: told to fail" in message  # the log tail
    assert endpoint.list_models() == []


def test_list_endpoints_by_display_name(emulator: Any) -> None:
    from google.cloud import aiplatform

    aiplatform.Endpoint.create(display_name="findme")
    assert [e.display_name for e in aiplatform.Endpoint.list(filter='display_name="findme"')] == ["findme"]
    assert PARENT.startswith(f"projects/{PROJECT}/")


def test_a_serving_process_that_never_becomes_healthy_fails_the_deploy(tmp_path: Path) -> None:
    from google.api_core import exceptions
    from google.cloud import aiplatform_v1

    from stack.vertex import VertexEmulator
    from tests.vertex_emulator.conftest import gapic

    with VertexEmulator(tmp_path / "vertex", serving_command=ECHO_SERVER, startup_timeout=1.0) as emu:
        models = gapic(aiplatform_v1.ModelServiceClient, emu.url)
        endpoints = gapic(aiplatform_v1.EndpointServiceClient, emu.url)
        upload = models.upload_model(
            parent=PARENT,
            model={
                "display_name": "loading",
                "artifact_uri": "gs://models/loading",
                "container_spec": {
                    "image_uri": "img:1",
                    "env": [{"name": "ECHO_FAIL", "value": "unhealthy"}],
                },
            },
        ).result()
        endpoint = endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "loading"}).result()
        resources = {"machine_spec": {"machine_type": "n1-standard-2"}, "min_replica_count": 1}
        operation = endpoints.deploy_model(
            endpoint=endpoint.name,
            deployed_model={"model": upload.model, "dedicated_resources": resources},
            traffic_split={"0": 100},
        )
        with pytest.raises(exceptions.GoogleAPICallError, match=r"not healthy at /v1/endpoints/.* after 1 s"):
            operation.result(timeout=30)
        assert endpoints.get_endpoint(name=endpoint.name).deployed_models == []
