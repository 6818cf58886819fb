"""What the launcher sends parses as Google's ``aiplatform_v1.PipelineJob`` (unknown fields
refused), including parameters holding a lone UTF-16 surrogate, which a proto string cannot."""

from __future__ import annotations

import json
from pathlib import Path

from events.decision import RunRequest
from pipelines.launch.base import Templates
from pipelines.launch.vertex import VertexConfig, VertexLauncher, encode_job_body, encode_spec

SPEC = {
    "pipelineInfo": {"name": "training"},
    "root": {
        "dag": {"tasks": {"train": {"taskInfo": {"name": "train"}}}},
        "inputDefinitions": {"parameters": {"data_uri": {"parameterType": "STRING"}}},
    },
    "schemaVersion": "2.1.0",
}
LONE = json.loads('"gs://b/\\udfffx.csv"')  # what json.loads makes of an event's "\udfff"


def _request(value: str) -> RunRequest:
    return RunRequest("training", "training-x-1", {"data_uri": value}, {"mlops-rule": "r"}, "r", False)


def test_a_lone_surrogate_is_sent_as_u_fffd_and_the_body_parses_as_a_pipeline_job() -> None:
    from stack.vertex import protos

    config = VertexConfig("p", "us-central1", "gs://b/root", "sa@p.iam.gserviceaccount.com")
    sent = encode_job_body(_request(LONE), encode_spec(SPEC, False), config)
    job = protos.parse(json.loads(sent), protos.PipelineJob)  # raises ApiError (400) as Vertex would
    assert job.runtime_config.parameter_values["data_uri"].string_value == "gs://b/\ufffdx.csv"
    assert job.service_account == "sa@p.iam.gserviceaccount.com" and job.labels["mlops-rule"] == "r"


def test_the_launcher_creates_that_job_on_the_emulator(tmp_path: Path) -> None:
    from stack.vertex import ephemeral_emulator

    (tmp_path / "training.yaml").write_text(json.dumps(SPEC), encoding="utf-8")  # JSON is YAML
    with ephemeral_emulator() as vertex:
        config = VertexConfig("p", "us-central1", "gs://b/root", api_endpoint=vertex.url)
        launcher = VertexLauncher(config, Templates(tmp_path))
        assert launcher.launch(_request(LONE)).status == "created"
        assert launcher.launch(_request(LONE)).status == "already_exists"
        (job,) = vertex.created_jobs().values()
        assert job["runtimeConfig"]["parameterValues"] == {"data_uri": "gs://b/\ufffdx.csv"}
