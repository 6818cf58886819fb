"""The Vertex AI Model Registry adapter: its pure request builders (checked against Google's
types and the SDK's own rules), then the adapter itself against the Vertex AI emulator, whose
resources the tests also make and read with the SDK (REST, anonymous credentials)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import backends
from pipelines.images import BASE_IMAGE
from pipelines.registry import RegistryError
from pipelines.registry.vertex import (
    parse_version_description,
    stage_folder,
    staging_uri,
    upload_request,
    vertex_labels,
)
from pipelines.serving.contract import serving_container_spec
from pipelines.serving.vertex import (
    EndpointError,
    allocate_traffic,
    split_by_deployed_id,
    traffic_by_version,
    unallocate_traffic,
)
from tests.pipelines.conftest import Vertex


def test_labels_follow_vertex_rules() -> None:
    labels = vertex_labels({"Data-URI": "gs://b/incoming/x.csv", "9lives": "ok", "accuracy": "0.93"})
    assert labels == {"accuracy": "0_93", "data-uri": "gs___b_incoming_x_csv", "l_9lives": "ok"}
    many = vertex_labels({f"k{i:03d}": "v" * 100 for i in range(80)})
    assert len(many) == 64 and all(len(v) == 63 for v in many.values())


def test_the_upload_request_for_a_new_and_an_existing_model() -> None:
    from google.cloud.aiplatform_v1 import UploadModelRequest

    spec = serving_container_spec("IMAGE", model_name="churn", records_uri="gs://r/serving", sample_rate=0.5)
    common = dict(
        parent="projects/p/locations/us-central1",
        model_name="churn",
        artifact_uri="gs://b/models/churn/run-1",
        container_spec=spec,
        labels={"data_uri": "gs://b/x.csv"},
        metrics={"roc_auc": 0.91},
        aliases=["challenger"],
        description="trained by run-1",
    )
    first = upload_request(**common, parent_model=None)  # type: ignore[arg-type]
    # Google's type parses it, unknown fields refused: every field name is one Vertex knows.
    parsed = UploadModelRequest.from_json(__import__("json").dumps(first))
    assert parsed.model_id == "churn" and not parsed.parent_model
    model = parsed.model
    assert list(model.version_aliases) == ["challenger", "default"]  # the new version is the default
    assert dict(model.labels) == {"data_uri": "gs___b_x_csv"}
    assert model.container_spec.image_uri == "IMAGE"
    assert list(model.container_spec.command) == ["mlops-events", "serve"]
    assert {e.name: e.value for e in model.container_spec.env} == {
        "MLOPS_MODEL_NAME": "churn",
        "MLOPS_SERVING_SAMPLE_RATE": "0.5",
        "MLOPS_SERVING_RECORDS_URI": "gs://r/serving",
    }
    labels, metrics, decisions, text = parse_version_description(model.version_description)
    assert (labels, metrics, decisions, text) == (
        {"data_uri": "gs://b/x.csv"},
        {"roc_auc": 0.91},
        [],
        "trained by run-1",
    )
    parent = "projects/p/locations/us-central1/models/churn"
    later = upload_request(**{**common, "aliases": ["default"]}, parent_model=parent)  # type: ignore[arg-type]
    assert later["parentModel"] == parent and "modelId" not in later
    assert later["model"]["versionAliases"] == ["default"]
    with pytest.raises(RegistryError, match="alias"):
        upload_request(**{**common, "aliases": ["Champion!"]}, parent_model=parent)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="not a valid Vertex model id"):
        upload_request(**{**common, "model_name": "Churn"}, parent_model=None)  # type: ignore[arg-type]
    assert parse_version_description("written in the console") == ({}, {}, [], "written in the console")


def test_a_staged_folder_keeps_its_layout_in_a_new_folder(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"w")
    (folder / "sub" / "holdout.parquet").write_bytes(b"h")
    target = tmp_path / "bucket"
    one, two = staging_uri(str(target)), staging_uri(str(target))
    assert one != two and one.startswith(f"{target}/vertex_ai_auto_staging/")
    assert stage_folder(folder, one) == one
    assert sorted(p.relative_to(one).as_posix() for p in Path(one).rglob("*") if p.is_file()) == [
        "model.joblib",
        "sub/holdout.parquet",
    ]
    with pytest.raises(RegistryError, match="is not a folder"):
        stage_folder(folder / "model.joblib", two)


@pytest.mark.parametrize(
    "split, percent",
    [({}, 100), ({"111": 100}, 10), ({"111": 90, "222": 10}, 10), ({"111": 33, "222": 67}, 25),
     ({"111": 50, "222": 50}, 100), ({"111": 1, "222": 99}, 3)],
)  # fmt: skip
def test_traffic_is_allocated_as_the_sdk_allocates_it(split: dict[str, int], percent: int) -> None:
    from google.cloud.aiplatform.models import Endpoint

    assert allocate_traffic(split, percent) == Endpoint._allocate_traffic(dict(split), percent)
    assert sum(allocate_traffic(split, percent).values()) == 100


@pytest.mark.parametrize(
    "split, deployed_id",
    [({"111": 100}, "111"), ({"111": 90, "222": 10}, "222"), ({"111": 90, "222": 10}, "111"),
     ({"111": 33, "222": 33, "333": 34}, "333"), ({"111": 100, "222": 0}, "222"), ({"111": 100}, "999")],
)  # fmt: skip
def test_traffic_is_unallocated_as_the_sdk_unallocates_it(split: dict[str, int], deployed_id: str) -> None:
    from google.cloud.aiplatform.models import Endpoint

    ours = unallocate_traffic(split, deployed_id)
    if deployed_id in split:
        theirs = Endpoint._unallocate_traffic(dict(split), deployed_id)
        theirs.pop(deployed_id)  # the SDK's undeploy leaves it out too
    else:
        theirs = dict(split)  # the SDK's undeploy sends the split as it is
    assert ours == theirs


def test_endpoint_traffic_translates() -> None:
    versions = {"111": "1", "222": "2"}
    assert traffic_by_version({"111": 90, "222": 10}, versions) == {"1": 90, "2": 10}
    assert split_by_deployed_id({"2": 100}, versions) == {"111": 0, "222": 100}
    with pytest.raises(EndpointError, match="not deployed"):
        split_by_deployed_id({"3": 100}, versions)


# --- against the emulator -------------------------------------------------------------------------


def model_folder(tmp_path: Path, name: str = "model") -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.joblib").write_bytes(b"weights")
    (folder / "metadata.json").write_text('{"feature_names": ["x"]}')
    return str(folder)


@pytest.mark.slow
def test_versions_aliases_and_names_as_vertex_resolves_them(vertex: Vertex, tmp_path: Path) -> None:
    aiplatform = vertex.sdk()
    registry = backends.model_registry()
    first = registry.register(
        "churn", model_folder(tmp_path, "v1"), labels={"data_uri": "gs://b/x.csv"}, metrics={"roc_auc": 0.9},
        aliases=["challenger"], description="first",
    )  # fmt: skip
    second = registry.register(
        "churn", model_folder(tmp_path, "v2"), labels={}, metrics={"roc_auc": 0.8}, aliases=["challenger"]
    )
    assert (first.version, second.version) == ("1", "2")
    # Each local folder was staged into the staging bucket, as the SDK stages one.
    assert first.artifact_uri.startswith(vertex.staging_bucket + "/vertex_ai_auto_staging/")
    assert first.labels == {"data_uri": "gs://b/x.csv"} and first.metrics == {"roc_auc": 0.9}
    assert registry.get("churn", "challenger") == registry.get("churn", "2")  # the alias moved
    assert registry.get("churn", "default").version == "2"  # type: ignore[union-attr]
    moved = registry.set_alias("churn", "1", "champion")
    assert moved.aliases == ("champion",)
    assert registry.set_alias("churn", "2", "champion").version == "2"
    assert registry.get("churn", "1").aliases == ()  # type: ignore[union-attr]
    assert registry.get("churn", "9") is None and registry.get("no-such-model", "1") is None
    assert [v.version for v in registry.list_versions("churn")] == ["1", "2"]
    assert "churn" in registry.list_models()
    with pytest.raises(RegistryError, match="no version '7'"):
        registry.set_alias("churn", "7", "champion")
    with pytest.raises(RegistryError, match="neither a version id nor an alias"):
        registry.get("churn", "Champion!")

    # Uploads always name the serving image (issue 11: "MLOPS_SERVING_IMAGE is not set").
    spec = aiplatform.Model(second.resource_name).gca_resource.container_spec
    assert spec.image_uri == BASE_IMAGE and list(spec.command) == ["mlops-events", "serve"]
    env = {e.name: e.value for e in spec.env}
    assert env["MLOPS_MODEL_NAME"] == "churn" and env["MLOPS_SERVING_RECORDS_URI"] == vertex.records_uri


@pytest.mark.slow
def test_a_model_made_in_the_console_resolves_by_numeric_id_and_display_name(vertex: Vertex) -> None:
    """Issue 11: ``vertex-merge-version-aliases-ui.json`` names model ``1234567890@5``; the registry
    answered "model name '1234567890' is not a valid Vertex model id"."""
    aiplatform = vertex.sdk()

    made = aiplatform.Model.upload(
        display_name="console-churn",
        artifact_uri=vertex.uri("console/1"),
        serving_container_image_uri="img:1",
    )
    model_id = made.resource_name.rsplit("/", 1)[-1]
    assert model_id.isdigit()
    registry = backends.model_registry()
    by_id = registry.get(model_id, "1")
    assert by_id is not None and by_id.model_name == model_id and by_id.display_name == "console-churn"
    assert registry.get("console-churn", "default") == by_id
    # A version registered by name goes under that model, not into a new one.
    added = registry.register("console-churn", vertex.uri("console/2"), labels={}, metrics={})
    assert (added.model_name, added.version, added.artifact_uri) == (model_id, "2", vertex.uri("console/2"))
    assert sorted(registry.set_alias(model_id, "2", "champion").aliases) == ["champion", "default"]

    aiplatform.Model.upload(
        display_name="console-churn",
        artifact_uri=vertex.uri("console/x"),
        serving_container_image_uri="img:1",
    )
    with pytest.raises(RegistryError, match="2 models have the display name 'console-churn'"):
        backends.model_registry().get("console-churn", "1")
    assert backends.model_registry().get(model_id, "2") is not None  # an id is never ambiguous


@pytest.mark.slow
def test_a_decision_is_recorded_with_who_and_why(vertex: Vertex, tmp_path: Path) -> None:
    registry = backends.model_registry()
    version = registry.register(
        "approvals", model_folder(tmp_path), labels={"run_id": "r1"}, metrics={"f1": 0.7}
    )
    approved = registry.record_decision(
        "approvals", version.version, "approved", principal="alice@example.com", reason="reviewed the report"
    )
    assert approved.labels == {"run_id": "r1"} and approved.metrics == {"f1": 0.7}
    ((decision),) = approved.decisions
    assert decision["decision"] == "approved" and decision["principal"] == "alice@example.com"
    again = registry.record_decision(
        "approvals", "1", "rejected", principal="bob@example.com", reason="drift"
    )
    assert [d["decision"] for d in again.decisions] == ["approved", "rejected"]
    assert registry.get("approvals", "1") == again
    with pytest.raises(RegistryError, match="decision must be one of"):
        registry.record_decision("approvals", "1", "maybe", principal="x", reason="y")


@pytest.mark.slow
def test_a_local_folder_without_a_staging_bucket_is_a_clear_error(
    vertex: Vertex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLOPS_STAGING_BUCKET")
    with pytest.raises(RegistryError, match="set MLOPS_STAGING_BUCKET"):
        backends.model_registry().register("nowhere", model_folder(tmp_path), labels={}, metrics={})
    monkeypatch.setenv("PIPELINE_ROOT", vertex.staging_bucket + "/pipeline-root")
    staged = backends.model_registry().register(
        "nowhere", model_folder(tmp_path, "again"), labels={}, metrics={}
    )
    assert staged.artifact_uri.startswith(vertex.staging_bucket + "/")


@pytest.mark.slow
def test_the_adapters_never_import_the_aiplatform_sdk(vertex: Vertex, tmp_path: Path) -> None:
    """Every task registers or deploys: the SDK cost ~3 s of CPU to import in each of them, its
    generated clients (``aiplatform_v1``) ~1.3 s."""
    import subprocess
    import sys

    script = f"""
import sys
from pipelines import backends
registry = backends.model_registry()
version = registry.register("sdk-free", {model_folder(tmp_path)!r}, labels={{}}, metrics={{}})
assert registry.get("sdk-free", version.version) == version
assert backends.endpoint("sdk-free-live").describe().traffic == {{}}
print(sorted(m for m in sys.modules if m == "google.cloud.aiplatform" or m.startswith("google.cloud.aiplatform.")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
