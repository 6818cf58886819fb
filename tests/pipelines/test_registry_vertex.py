from __future__ import annotations

import pytest

from pipelines.registry import RegistryError
from pipelines.registry.vertex import parse_version_description, upload_arguments, vertex_labels
from pipelines.serving.vertex import split_by_deployed_id, to_vertex_instances, traffic_by_version


def test_labels_follow_vertex_rules() -> None:
    labels = vertex_labels({"Data-URI": "gs://b/incoming/x.csv", "9lives": "ok", "accuracy": "0.93"})
    assert labels == {"accuracy": "0_93", "data-uri": "gs___b_incoming_x_csv", "l_9lives": "ok"}
    many = vertex_labels({f"k{i:03d}": "v" * 100 for i in range(80)})
    assert len(many) == 64 and all(len(v) == 63 for v in many.values())


def test_upload_arguments_for_a_new_and_an_existing_model() -> None:
    common = dict(
        project="p",
        location="us-central1",
        model_name="churn",
        artifact_uri="gs://b/models/churn/run-1",
        serving_image="IMAGE",
        labels={"data_uri": "gs://b/x.csv"},
        metrics={"roc_auc": 0.91},
        aliases=["challenger"],
        description="trained by run-1",
    )
    first = upload_arguments(**common, parent_exists=False)  # type: ignore[arg-type]
    assert first["model_id"] == "churn" and "parent_model" not in first
    assert first["version_aliases"] == ["challenger"] and first["is_default_version"] is True
    assert first["labels"] == {"data_uri": "gs___b_x_csv"}
    assert first["serving_container_image_uri"] == "IMAGE"
    assert parse_version_description(first["version_description"]) == (
        {"data_uri": "gs://b/x.csv"},
        {"roc_auc": 0.91},
    )
    later = upload_arguments(**common, parent_exists=True)  # type: ignore[arg-type]
    assert (
        later["parent_model"] == "projects/p/locations/us-central1/models/churn" and "model_id" not in later
    )
    with pytest.raises(RegistryError, match="alias"):
        upload_arguments(**{**common, "aliases": ["Champion!"]}, parent_exists=True)  # type: ignore[arg-type]
    assert parse_version_description("not json") == ({}, {})


def test_endpoint_traffic_and_instances_translate() -> None:
    versions = {"111": "1", "222": "2"}
    assert traffic_by_version({"111": 90, "222": 10}, versions) == {"1": 90, "2": 10}
    assert split_by_deployed_id({"2": 100}, versions) == {"111": 0, "222": 100}
    with pytest.raises(ValueError, match="not deployed"):
        split_by_deployed_id({"3": 100}, versions)
    assert to_vertex_instances([{"b": 2, "a": 1}, [3, 4]], ["a", "b"]) == [[1, 2], [3, 4]]
