"""The container's WSGI application in process: health follows the load, errors are clear."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from werkzeug.test import Client

from pipelines.serving.container import ServingApp
from pipelines.serving.contract import Settings
from pipelines.serving.predictor import ServedModel

HEALTH = "/v1/endpoints/123/deployedModels/456"
PREDICT = HEALTH + ":predict"


def settings(**env: str) -> Settings:
    return Settings.from_env(
        {"AIP_STORAGE_URI": "gs://b/m", "AIP_ENDPOINT_ID": "123", "AIP_DEPLOYED_MODEL_ID": "456", **env}
    )


def test_health_is_503_until_the_model_is_loaded_and_predict_waits_for_it(classifier_dir: Path) -> None:
    release = threading.Event()

    def slow_load(uri: str) -> ServedModel:
        assert uri == "gs://b/m"
        release.wait(10)
        return ServedModel.load(str(classifier_dir))

    app = ServingApp(settings(MLOPS_MODEL_NAME="churn"), load=slow_load).start()
    client = Client(app)
    loading = client.get(HEALTH)
    assert (loading.status_code, loading.json) == (503, {"status": "loading"})
    early = client.post(PREDICT, json={"instances": [[1.0, 2.0, "pro"]]})
    assert early.status_code == 503 and "still loading" in early.json["error"]
    release.set()
    assert app.loaded.wait(10)
    ready = client.get(HEALTH)
    assert ready.status_code == 200
    assert ready.json == {
        "status": "ready",
        "endpoint_id": "123",
        "deployed_model_id": "456",
        "model_name": "churn",
        "version": None,
    }
    answer = client.post(PREDICT, json={"instances": [[1.0, 2.0, "pro"]], "parameters": {}})
    assert answer.status_code == 200 and len(answer.json["predictions"]) == 1
    assert answer.headers["X-Request-Id"]


def test_a_model_that_cannot_load_fails_health_and_calls_the_failure_hook(
    capsys: pytest.CaptureFixture[str],
) -> None:
    failed = threading.Event()

    def broken(uri: str) -> ServedModel:
        raise FileNotFoundError(f"no such object: {uri}/model.joblib")

    app = ServingApp(settings(), load=broken, on_load_failure=failed.set).start()
    assert failed.wait(5)
    health = Client(app).get(HEALTH)
    assert health.status_code == 503 and health.json["status"] == "failed"
    assert "no such object: gs://b/m/model.joblib" in health.json["error"]
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["severity"] == "ERROR" and line["event"] == "serving.load_failed"


def loaded(
    classifier_dir: Path, records: list[tuple[str, bytes, str, Mapping[str, str]]] | None = None, **env: str
) -> ServingApp:
    def write(uri: str, data: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        assert records is not None
        records.append((uri, data, content_type, metadata))

    app = ServingApp(
        settings(AIP_STORAGE_URI=str(classifier_dir), **env), write=write if records is not None else None
    ).start()
    assert app.loaded.wait(10)
    return app


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "the request body is not JSON"),
        (b"[1, 2]", 400, 'must be a JSON object {"instances": [...]}'),
        (b'{"instances": []}', 400, '"instances" must be a non-empty array'),
        (b'{"instances": {"usage": 1}}', 400, '"instances" must be a non-empty array'),
        (
            b'{"instances": [[1, 2, "pro"]], "parameters": [1]}',
            400,
            '"parameters" must be an object, got list',
        ),
        (b'{"instances": [{"usage": 1, "plan": "pro"}]}', 400, "instance 0 lacks feature(s) 'tenure'"),
    ],
)
def test_bad_requests_are_400_with_the_reason(
    classifier_dir: Path, body: bytes, status: int, message: str
) -> None:
    response = Client(loaded(classifier_dir)).post(PREDICT, data=body, content_type="application/json")
    assert response.status_code == status
    assert message in response.json["error"]


def test_other_paths_and_methods(classifier_dir: Path) -> None:
    client = Client(loaded(classifier_dir))
    assert client.get("/predict").status_code == 404
    assert "POST " + PREDICT in client.get("/").json["error"]
    assert client.get(PREDICT).status_code == 405
    assert client.head(HEALTH).status_code == 200


def test_records_are_offered_after_the_answer_and_flushed_at_close(
    classifier_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written: list[tuple[str, bytes, str, Mapping[str, str]]] = []
    app = loaded(
        classifier_dir,
        written,
        MLOPS_SERVING_RECORDS_URI="gs://b/records",
        MLOPS_MODEL_NAME="churn",
        MLOPS_MODEL_VERSION="7",
        MLOPS_SERVING_RECORDS_FLUSH_SECONDS="3600",
    )
    client = Client(app)
    r = client.post(
        PREDICT,
        json={"instances": [{"usage": 1.0, "tenure": 2.0, "plan": "pro", "target": 0}]},
        headers={"X-Request-Id": "abc"},
    )
    assert r.status_code == 200 and written == []  # not on the request's path
    app.close()
    ((uri, data, _, metadata),) = written
    assert uri.startswith("gs://b/records/churn/") and metadata == {"mlops-events-output": "true"}
    record = json.loads(data)
    assert (record["request_id"], record["version"], record["deployed_model_id"]) == ("abc", "7", "456")
    assert record["instance"] == {"usage": 1.0, "tenure": 2.0, "plan": "pro"}
    events = [json.loads(x)["event"] for x in capsys.readouterr().out.splitlines()]
    assert events == ["serving.start", "serving.stop"]


def test_the_start_line_says_why_records_are_off(
    classifier_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded(classifier_dir)
    loaded(classifier_dir, MLOPS_SERVING_RECORDS_URI="gs://b/r")  # no model name anywhere
    loaded(
        classifier_dir,
        MLOPS_SERVING_RECORDS_URI="gs://b/r",
        MLOPS_MODEL_NAME="m",
        MLOPS_SERVING_SAMPLE_RATE="0",
    )
    loaded(classifier_dir, MLOPS_SERVING_RECORDS_URI="gs://b/r", MLOPS_MODEL_NAME="//")
    reasons = [json.loads(x)["records"]["reason"] for x in capsys.readouterr().out.splitlines()]
    assert reasons == [
        "MLOPS_SERVING_RECORDS_URI is not set",
        "no model name: set MLOPS_MODEL_NAME (the upload's containerSpec.env does)",
        "MLOPS_SERVING_SAMPLE_RATE is 0",
        "model name '//' gives no usable folder name",
    ]
