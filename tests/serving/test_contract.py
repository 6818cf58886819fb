"""The custom-container contract as the container reads it, and the containerSpec an upload sends."""

from __future__ import annotations

import json

import pytest
from google.cloud.aiplatform_v1 import Model, ModelContainerSpec
from google.protobuf import json_format

from pipelines.serving.contract import Settings, SettingsError, serving_container_spec


def test_vertex_defaults_follow_the_documented_routes() -> None:
    s = Settings.from_env(
        {
            "AIP_STORAGE_URI": "gs://vertex-managed/copy",
            "AIP_ENDPOINT_ID": "123",
            "AIP_DEPLOYED_MODEL_ID": "456",
            "AIP_MODE": "PREDICTION",
        }
    )
    assert (s.port, s.health_route, s.predict_route) == (
        8080,
        "/v1/endpoints/123/deployedModels/456",
        "/v1/endpoints/123/deployedModels/456:predict",
    )
    assert s.on_vertex and s.records_uri is None and s.sample_rate == 1.0


def test_routes_and_port_from_the_environment_and_local_defaults() -> None:
    s = Settings.from_env({"AIP_STORAGE_URI": "/m", "AIP_HTTP_PORT": "9000", "AIP_HEALTH_ROUTE": "/ok"})
    assert (s.port, s.health_route, s.predict_route) == (9000, "/ok", "/predict")
    assert not s.on_vertex


def test_every_bad_setting_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(
            {
                "AIP_HTTP_PORT": "http",
                "MLOPS_SERVING_SAMPLE_RATE": "1.5",
                "MLOPS_SERVING_RECORDS_BATCH": "0",
                "AIP_PREDICT_ROUTE": "predict",
            }
        )
    message = str(info.value)
    for part in (
        "AIP_STORAGE_URI is empty",
        "AIP_HTTP_PORT must be an integer, got 'http'",
        "MLOPS_SERVING_SAMPLE_RATE must be within 0..1, got '1.5'",
        "MLOPS_SERVING_RECORDS_BATCH must be within 1..",
        "AIP_PREDICT_ROUTE must be a path starting with '/'",
    ):
        assert part in message, message


def test_container_spec_parses_strictly_as_googles_model_container_spec() -> None:
    spec = serving_container_spec(
        "us-central1-docker.pkg.dev/p/r/mlops-events@sha256:" + "a" * 64,
        model_name="churn",
        records_uri="gs://bucket/serving-records/",
        sample_rate=0.25,
        model_version="3",
    )
    parsed = json_format.Parse(
        json.dumps(spec), ModelContainerSpec.pb(ModelContainerSpec()), ignore_unknown_fields=False
    )
    assert list(parsed.command) == ["mlops-events", "serve"]
    assert [p.container_port for p in parsed.ports] == [8080]
    assert (parsed.predict_route, parsed.health_route) == ("/predict", "/health")
    assert {e.name: e.value for e in parsed.env} == {
        "MLOPS_MODEL_NAME": "churn",
        "MLOPS_SERVING_SAMPLE_RATE": "0.25",
        "MLOPS_MODEL_VERSION": "3",
        "MLOPS_SERVING_RECORDS_URI": "gs://bucket/serving-records",
    }
    # Inside an upload's Model, and back: nothing is lost or renamed.
    model = {"displayName": "churn", "artifactUri": "gs://bucket/models/churn/3", "containerSpec": spec}
    parsed_model = json_format.Parse(json.dumps(model), Model.pb(Model()), ignore_unknown_fields=False)
    assert json_format.MessageToDict(parsed_model)["containerSpec"] == spec


def test_container_spec_without_records_and_the_env_it_sets_is_what_the_container_reads() -> None:
    spec = serving_container_spec("img", model_name="churn", records_uri=None, sample_rate=0.0)
    env = {e["name"]: e["value"] for e in spec["env"]}
    assert "MLOPS_SERVING_RECORDS_URI" not in env
    s = Settings.from_env({**env, "AIP_STORAGE_URI": "gs://b/m", "AIP_HTTP_PORT": "8080"})
    assert (s.model_name, s.sample_rate, s.records_uri) == ("churn", 0.0, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image": " "}, "image is empty"),
        ({"sample_rate": 2}, "sample_rate must be within 0..1"),
        ({"env": {"AIP_HTTP_PORT": "1"}}, "'AIP_HTTP_PORT' is not allowed"),
        ({"model_name": ""}, "model_name is empty"),
    ],
)
def test_bad_container_spec_arguments_are_named(kwargs: dict, message: str) -> None:
    args = {"image": "img", "model_name": "churn", "records_uri": None, "sample_rate": 1.0, **kwargs}
    image = args.pop("image")
    with pytest.raises(ValueError, match=message):
        serving_container_spec(image, **args)
