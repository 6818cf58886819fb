"""The ports are built from the task's environment: only the API endpoint tells Vertex AI from
the local emulator; the serving image is never missing (issue 11)."""

from __future__ import annotations

import pytest

from pipelines import backends
from pipelines.alerts import PubSubPublisher, PushPublisher
from pipelines.images import BASE_IMAGE
from pipelines.registry.vertex import VertexModelRegistry
from pipelines.vertex_api import VertexSettings

VARIABLES = (
    "VERTEX_API_ENDPOINT", "GOOGLE_CLOUD_PROJECT", "CLOUD_ML_PROJECT_ID", "GOOGLE_CLOUD_REGION",
    "CLOUD_ML_REGION", "MLOPS_STAGING_BUCKET", "PIPELINE_ROOT", "MLOPS_SERVING_IMAGE",
    "MLOPS_SERVING_RECORDS_URI", "MLOPS_SERVING_SAMPLE_RATE", "PUBSUB_EMULATOR_HOST", "MLOPS_PUBSUB_PUSH_URL",
)  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_api_endpoint_alone_selects_the_emulator(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLOUD_ML_PROJECT_ID", "p")  # as Vertex sets it in a task
    env.setenv("CLOUD_ML_REGION", "europe-west4")
    on_vertex = backends.vertex_settings()
    assert (on_vertex.project, on_vertex.location, on_vertex.api_endpoint) == ("p", "europe-west4", None)
    assert not on_vertex.local
    assert on_vertex.client_arguments() == {"api_endpoint": "europe-west4-aiplatform.googleapis.com"}

    env.setenv("VERTEX_API_ENDPOINT", "http://127.0.0.1:8790")
    env.setenv("GOOGLE_CLOUD_PROJECT", "local-project")
    local = backends.vertex_settings()
    assert local.local and local.project == "local-project"
    assert local.client_arguments() == {"api_endpoint": "http://127.0.0.1:8790", "transport": "rest"}
    private = VertexSettings("p", "us-central1", api_endpoint="https://us-central1-aiplatform.example.com/")
    assert private.client_arguments() == {"api_endpoint": "us-central1-aiplatform.example.com"}
    assert not private.local


def test_project_is_required(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(backends.BackendConfigError, match="GOOGLE_CLOUD_PROJECT"):
        backends.vertex_settings()


def test_staging_bucket_default_is_the_pipeline_roots_bucket(env: pytest.MonkeyPatch) -> None:
    assert backends.staging_bucket() is None
    env.setenv("PIPELINE_ROOT", "gs://roots/pipeline-root")
    assert backends.staging_bucket() == "gs://roots"
    env.setenv("MLOPS_STAGING_BUCKET", "staging")
    assert backends.staging_bucket() == "gs://staging"
    env.setenv("MLOPS_STAGING_BUCKET", "gs://other/prefix")
    assert backends.staging_bucket() == "gs://other"


def test_the_serving_image_is_never_missing(env: pytest.MonkeyPatch) -> None:
    """Issue 11: registration failed with 'MLOPS_SERVING_IMAGE is not set' on Vertex."""
    env.setenv("GOOGLE_CLOUD_PROJECT", "p")
    registry = backends.model_registry()
    assert isinstance(registry, VertexModelRegistry) and registry.serving_image == BASE_IMAGE
    env.setenv("MLOPS_SERVING_IMAGE", "europe-docker.pkg.dev/p/r/mlops-events@sha256:" + "a" * 64)
    env.setenv("MLOPS_SERVING_RECORDS_URI", "gs://records/serving")
    env.setenv("MLOPS_SERVING_SAMPLE_RATE", "0.25")
    registry = backends.model_registry()
    assert isinstance(registry, VertexModelRegistry)
    assert registry.serving_image.endswith("a" * 64)
    assert (registry.records_uri, registry.sample_rate) == ("gs://records/serving", 0.25)
    env.setenv("MLOPS_SERVING_SAMPLE_RATE", "often")
    with pytest.raises(backends.BackendConfigError, match="MLOPS_SERVING_SAMPLE_RATE must be a number"):
        backends.model_registry()


def test_publisher_is_pubsub_unless_the_local_stack_pushes(env: pytest.MonkeyPatch) -> None:
    env.setenv("GOOGLE_CLOUD_PROJECT", "p")
    assert isinstance(backends.publisher(), PubSubPublisher)
    env.setenv("MLOPS_PUBSUB_PUSH_URL", "http://127.0.0.1:1")
    assert isinstance(backends.publisher(), PushPublisher)
    env.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    assert isinstance(backends.publisher(), PubSubPublisher)
