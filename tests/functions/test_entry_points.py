"""The four entry points in the real functions-framework app, against the Vertex AI emulator."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from functions.dead_letter import full_record
from stack.vertex import VertexEmulator
from tests import samples
from tests.functions.conftest import PIPELINE_SA, dead_letters


def post_binary(client, doc: dict):
    headers, body = samples.binary_request(doc)
    return client.post("/", data=body, headers=headers)


def post_structured(client, doc: dict):
    return client.post("/", data=json.dumps(doc), headers={"Content-Type": "application/cloudevents+json"})


def test_storage_event_creates_one_job_with_everything_vertex_needs(
    client, vertex: VertexEmulator, templates: Path
) -> None:
    app = client("on_new_data")
    doc = samples.storage_event("incoming/churn/2024-05-01.csv", generation="1714557492345678")
    assert post_binary(app, doc).status_code == 200

    ((job_id, body),) = vertex.created_jobs().items()
    assert job_id.startswith("training-new-training-data-")
    assert body["serviceAccount"] == PIPELINE_SA
    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://demo-data/pipeline-root"
    assert body["runtimeConfig"]["parameterValues"] == {
        "data_uri": "gs://demo-data/incoming/churn/2024-05-01.csv",
        "model_name": "churn",
        "trigger": "gs://demo-data/incoming/churn/2024-05-01.csv#1714557492345678",
    }
    manifest = json.loads((templates / "manifest.json").read_text())
    assert body["labels"] == {
        "mlops-source": "storage_object_finalized",
        "mlops-rule": "new-training-data",
        "mlops-pipeline": "training",
        "mlops-event": body["labels"]["mlops-event"],
        "mlops-template": manifest["pipelines"]["training"]["sha256"][:20],
    }
    # The template sent is the compiled one, with caching switched off by the rule.
    compiled = yaml.safe_load((templates / "training.yaml").read_text())
    assert body["pipelineSpec"]["pipelineInfo"] == compiled["pipelineInfo"]
    assert body["pipelineSpec"]["root"]["inputDefinitions"] == compiled["root"]["inputDefinitions"]
    tasks = body["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks and all(t["cachingOptions"] == {"enableCache": False} for t in tasks.values())


def test_five_deliveries_and_a_new_event_id_create_exactly_one_job(client, vertex: VertexEmulator) -> None:
    app = client("on_new_data")
    doc = samples.storage_event(generation=42, event_id="original")
    for _ in range(5):
        assert post_binary(app, doc).status_code == 200
    # Google Cloud Storage can deliver the same generation again under a new event id.
    assert post_structured(app, {**doc, "id": "another-id"}).status_code == 200
    assert len(vertex.created_jobs()) == 1
    assert vertex.stats.created == 1
    assert vertex.stats.conflicts == 5


def test_structured_and_binary_modes_are_the_same_event(client, vertex: VertexEmulator) -> None:
    app = client("on_new_data")
    post_structured(app, samples.storage_event(generation=1))
    post_binary(app, samples.storage_event(generation=1, event_id="x"))
    assert len(vertex.created_jobs()) == 1


def test_alert_registry_and_run_request_entry_points_launch(client, vertex: VertexEmulator) -> None:
    assert (
        post_structured(
            client("on_monitoring_alert"), samples.load("monitoring-incident-open.json")
        ).status_code
        == 200
    )
    assert (
        post_structured(
            client("on_model_registry_event"), samples.load("vertex-merge-version-aliases-v1.json")
        ).status_code
        == 200
    )
    assert post_structured(client("on_run_request"), samples.load("run-request.json")).status_code == 200
    pipelines = sorted(body["labels"]["mlops-pipeline"] for body in vertex.created_jobs().values())
    assert pipelines == ["deployment", "retraining", "training"]


def test_raw_pubsub_push_envelope_is_accepted(client, vertex: VertexEmulator) -> None:
    payload = {
        "pipeline": "batch_prediction",
        "parameters": {"model_name": "churn", "data_uri": "gs://demo-data/x.csv"},
    }
    push = {
        "message": {
            "data": base64.b64encode(json.dumps(payload).encode()).decode(),
            "messageId": "77",
            "publishTime": "2026-01-01T00:00:00Z",
        },
        "subscription": "projects/demo-project/subscriptions/run-requests-push",
    }
    response = client("on_run_request").post("/projects/demo-project/topics/mlops-run-requests", json=push)
    assert response.status_code == 200
    (body,) = vertex.created_jobs().values()
    assert body["runtimeConfig"]["parameterValues"]["model_name"] == "churn"


def test_skips_launch_nothing_and_record_nothing(client, vertex: VertexEmulator, function_env: Path) -> None:
    assert post_binary(client("on_new_data"), samples.storage_event("incoming/readme.txt")).status_code == 200
    assert (
        post_structured(
            client("on_monitoring_alert"), samples.load("monitoring-incident-closed.json")
        ).status_code
        == 200
    )
    assert vertex.created_jobs() == {}
    assert dead_letters(function_env) == []


MALFORMED = [
    pytest.param(
        "on_new_data",
        {
            "ce-type": "google.cloud.storage.object.v1.finalized",
            "ce-source": "//storage.googleapis.com/projects/_/buckets/b",
            "ce-specversion": "1.0",
            "Content-Type": "application/json",
        },
        b'{"bucket": "b", "name": "incoming/a.csv", "generation": "1", "size": "5"}',
        "missing header(s): ce-id",
        id="missing-ce-id",
    ),
    pytest.param(
        "on_new_data",
        {
            "ce-id": "1",
            "ce-type": "google.cloud.storage.object.v1.finalized",
            "ce-source": "//storage.googleapis.com/projects/_/buckets/b",
            "ce-specversion": "1.0",
            "Content-Type": "text/plain",
        },
        b"this is not json",
        "storage event data must be a JSON object",
        id="binary-body-not-json",
    ),
    pytest.param(
        "on_run_request",
        None,
        samples.pubsub_event({"pipeline": "training"}),
        "not valid base64",
        id="bad-base64",
    ),
    pytest.param("on_model_registry_event", None, None, "", id="unknown-method"),
    pytest.param(
        "on_run_request",
        None,
        samples.pubsub_event({"pipeline": "training", "parameters": {"x": "y" * 300_000}}),
        "262144",
        id="oversized-message",
    ),
    pytest.param(
        "on_run_request",
        None,
        samples.pubsub_event(
            {
                "pipeline": "training",
                "parameters": {
                    "data_uri": "gs://b/a.csv",
                    "model_name": "m",
                    "service_account": "owner@evil.iam.gserviceaccount.com",
                },
            }
        ),
        "parameter 'service_account' is not allowed",
        id="sets-service-account",
    ),
    pytest.param(
        "on_run_request",
        None,
        samples.pubsub_event({"pipeline": "no-such-pipeline"}),
        "is not in the catalog",
        id="unknown-pipeline",
    ),
    pytest.param(
        "on_run_request",
        None,
        samples.load("monitoring-incident-open.json"),
        "this function handles run.request events, got monitoring.alert",
        id="wrong-trigger",
    ),
]


@pytest.mark.parametrize(("target", "headers", "body", "reason"), MALFORMED)
def test_malformed_input_is_dead_lettered_never_launched_never_5xx(
    client, vertex: VertexEmulator, function_env: Path, target: str, headers, body, reason: str
) -> None:
    app = client(target)
    if body is None:  # an audit entry of a ModelService method we do not handle
        doc = samples.load("vertex-merge-version-aliases-v1.json")
        doc["data"]["protoPayload"]["methodName"] = "google.cloud.aiplatform.v1.ModelService.ExportModel"
        response = post_structured(app, doc)
    elif headers is None:
        if "bad-base64" in str(reason) or reason == "not valid base64":
            body["data"]["message"]["data"] = "!!!not base64!!!"
        response = post_structured(app, body)
    else:
        response = app.post("/", data=body, headers=headers)
    assert response.status_code < 500
    assert vertex.created_jobs() == {}
    records = dead_letters(function_env)
    if target == "on_model_registry_event":
        # An unhandled ModelService method is a valid audit event that no rule wants: skipped, not dead.
        assert records == []
        return
    assert len(records) == 1, records
    assert reason in records[0]["reason"]
    assert records[0]["entry_point"] == target
    # A large record is truncated in the file; the whole event is stored beside it for replay.
    assert full_record(records[0])["event"]["data"] is not None


def test_transient_vertex_failure_answers_500_and_the_retry_launches_once(client, monkeypatch) -> None:
    from stack.vertex import Faults, ephemeral_emulator

    with ephemeral_emulator(Faults(rate=1.0, kinds=("503",))) as failing:
        monkeypatch.setenv("VERTEX_API_ENDPOINT", failing.url)
        from functions.runtime import reset_runtime

        reset_runtime()
        app = client("on_new_data")
        doc = samples.storage_event(generation=9)
        assert post_binary(app, doc).status_code == 500  # the platform will redeliver
        failing.faults.rate = 0.0
        assert post_binary(app, doc).status_code == 200
        assert post_binary(app, doc).status_code == 200
        assert list(failing.created_jobs()) and failing.stats.created == 1


def test_events_older_than_the_maximum_age_are_dropped_with_a_record(
    client, vertex, function_env, monkeypatch
) -> None:
    monkeypatch.setenv("MAX_EVENT_AGE_SECONDS", "3600")
    from functions.runtime import reset_runtime

    reset_runtime()
    doc = samples.storage_event()
    doc["time"] = "2020-01-01T00:00:00Z"
    assert post_structured(client("on_new_data"), doc).status_code == 200
    assert vertex.created_jobs() == {}
    (record,) = dead_letters(function_env)
    assert "older than MAX_EVENT_AGE_SECONDS=3600" in record["reason"]


def test_one_structured_log_line_per_event(client, vertex, capsys) -> None:
    post_binary(client("on_new_data"), samples.storage_event(generation=3))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (entry,) = [line for line in lines if line.get("entry_point") == "on_new_data"]
    assert entry["severity"] == "INFO"
    assert entry["decision"] == "launch"
    assert entry["rule"] == "new-training-data"
    assert entry["job_id"] in vertex.created_jobs()
    assert entry["event_id"] == "e1"
    assert entry["message"].startswith("launch training as ")
