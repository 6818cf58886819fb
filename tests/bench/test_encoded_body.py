"""The launcher's cached, spliced encoding sends the same JSON object as ``job_body`` (the bench's
speed-up of the warm launch must not change what Vertex receives)."""

from __future__ import annotations

import json

import pytest

from events.decision import RunRequest
from pipelines.launch.vertex import VertexConfig, encode_job_body, encode_spec, job_body

SPEC = {
    "pipelineInfo": {"name": "training"},
    "root": {"dag": {"tasks": {"train": {"taskInfo": {"name": "train"}}}}},
    "components": {"comp-x": {"dag": {"tasks": {"inner": {"cachingOptions": {"enableCache": True}}}}}},
    "schemaVersion": "2.1.0",
}


@pytest.mark.parametrize("caching", [None, True, False])
@pytest.mark.parametrize("service_account", [None, "pipelines@p.iam.gserviceaccount.com"])
def test_spliced_body_equals_job_body(caching: bool | None, service_account: str | None) -> None:
    config = VertexConfig("p", "us-central1", "gs://b/root", service_account)
    request = RunRequest(
        "training", "training-x-1", {"data_uri": "gs://b/é.csv", "n": 3}, {"mlops-rule": "r"}, "r", caching
    )
    spliced = json.loads(encode_job_body(request, encode_spec(SPEC, caching), config))
    assert spliced == job_body(request, SPEC, config)
    assert SPEC["components"]["comp-x"]["dag"]["tasks"]["inner"]["cachingOptions"] == {"enableCache": True}
