"""The production path, locally: fake-gcs-server for Cloud Storage and the Vertex AI emulator
for Vertex, selected by ``VERTEX_API_ENDPOINT`` alone. The components and the tests reach them
through the project's own adapters and Google's clients, never through a stand-in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stack.emulators import FakeGcs

PROJECT = "local-project"
REGION = "us-central1"

# Settings a developer's shell may hold that would change what the tasks do.
_CLEARED = (
    "CLOUD_ML_PROJECT_ID", "CLOUD_ML_REGION", "PIPELINE_ROOT", "MLOPS_SERVING_IMAGE",
    "MLOPS_SERVING_SAMPLE_RATE", "PUBSUB_EMULATOR_HOST", "MLOPS_PUBSUB_PUSH_URL",
)  # fmt: skip


@dataclass(frozen=True)
class Vertex:
    """A running emulator and the buckets the tasks use (each test module gets its own)."""

    emulator: Any  # stack.vertex.VertexEmulator
    url: str
    bucket: str  # data, serving records
    staging_bucket: str  # where the SDK stages model folders at upload
    records_uri: str  # MLOPS_SERVING_RECORDS_URI

    def uri(self, path: str) -> str:
        return f"gs://{self.bucket}/{path.lstrip('/')}"

    @staticmethod
    def sdk() -> Any:
        """``google.cloud.aiplatform``, the SDK a user drives Vertex with, initialised for the
        emulator (REST, anonymous) with the settings the project's own adapters use: the tests
        make and read resources with Google's client, the adapters with theirs."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import aiplatform

        from pipelines import backends

        settings = backends.vertex_settings()
        aiplatform.init(
            project=settings.project,
            location=settings.location,
            api_endpoint=settings.api_endpoint,
            api_transport="rest",
            credentials=AnonymousCredentials(),
            staging_bucket=settings.staging_bucket,
        )
        return aiplatform


def start_vertex(
    mp: pytest.MonkeyPatch, fake_gcs: FakeGcs, state: Path, **emulator_args: Any
) -> Iterator[Vertex]:
    from pipelines import storage_io
    from stack.vertex import VertexEmulator

    for name in _CLEARED:
        mp.delenv(name, raising=False)
    mp.setenv("STORAGE_EMULATOR_HOST", fake_gcs.host)
    mp.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    mp.setenv("GOOGLE_CLOUD_REGION", REGION)
    suffix = uuid.uuid4().hex[:10]
    bucket, staging = f"data-{suffix}", f"staging-{suffix}"
    for name in (bucket, staging):
        storage_io.ensure_bucket(name)
    records = f"gs://{bucket}/serving-records"
    mp.setenv("MLOPS_STAGING_BUCKET", staging)
    mp.setenv("MLOPS_SERVING_RECORDS_URI", records)
    mp.setenv("MLOPS_SERVING_RECORDS_FLUSH_SECONDS", "0.3")  # read by the serving processes
    args = {"startup_timeout": 120.0, **emulator_args}
    with VertexEmulator(state, env={"STORAGE_EMULATOR_HOST": fake_gcs.host}, **args) as emulator:
        mp.setenv("VERTEX_API_ENDPOINT", emulator.url)
        yield Vertex(emulator, emulator.url, bucket, f"gs://{staging}", records)


@pytest.fixture(scope="module")
def vertex(fake_gcs: FakeGcs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vertex]:
    with pytest.MonkeyPatch.context() as mp:
        yield from start_vertex(mp, fake_gcs, tmp_path_factory.mktemp("vertex"))
