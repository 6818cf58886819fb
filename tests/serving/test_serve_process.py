"""``mlops-events serve`` as Vertex runs it: a real process, AIP_* environment, a trained artifact
from a local folder and from gs:// (fake-gcs-server), records read back by monitoring."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pipelines import storage_io
from pipelines.components import predict
from pipelines.components.steps import monitoring as monitoring_steps
from stack.emulators import free_port
from tests.pipelines.datasets import generated
from tests.serving.conftest import FEATURES, clean_env, http, serve_command, serving

pytestmark = pytest.mark.slow

PREDICT = "/v1/endpoints/123/deployedModels/456:predict"
HEALTH = "/v1/endpoints/123/deployedModels/456"


def record_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl"))


def test_serves_a_local_artifact_under_the_vertex_contract(classifier_dir: Path, tmp_path: Path) -> None:
    records = tmp_path / "records"
    env = {
        "AIP_STORAGE_URI": str(classifier_dir),
        "MLOPS_MODEL_NAME": "churn",
        "MLOPS_MODEL_VERSION": "4",
        "MLOPS_SERVING_RECORDS_URI": str(records),
        "MLOPS_SERVING_RECORDS_BATCH": "4",
        "MLOPS_SERVING_RECORDS_FLUSH_SECONDS": "3600",
    }
    with serving(env, tmp_path) as served:
        # Listening before the model is loaded: 503 until then, then 200.
        assert served.health_seen[-1] == 200 and 503 in served.health_seen
        assert set(served.health_seen[:-1]) <= {None, 503}
        (start,) = [line for line in served.log_lines() if line["event"] == "serving.start"]
        assert (start["model"], start["version"], start["features"]) == ("churn", "4", FEATURES)
        assert start["records"]["enabled"] and start["predict_route"] == PREDICT

        frame = generated(5, seed=21)
        objects = frame.to_dict(orient="records")  # with the label column "target"
        arrays = frame[FEATURES].to_numpy().tolist()
        status, by_object = http("POST", served.url + PREDICT, {"instances": objects})
        assert status == 200
        status, by_array = http("POST", served.url + PREDICT, {"instances": arrays, "parameters": {}})
        assert status == 200 and by_array == by_object
        for p in by_object["predictions"]:
            assert p["prediction"] in (0, 1) and set(p["probabilities"]) == {"0", "1"}
            assert p["probabilities"][str(p["prediction"])] >= 0.5

        status, error = http(
            "POST", served.url + PREDICT, {"instances": [objects[0], {"usage": 1, "plan": "pro"}]}
        )
        assert status == 400 and "instance 1 lacks feature(s) 'tenure'" in error["error"]

        # Batches of 4 records: each 5-instance request filled one and was written on its own.
        deadline = time.monotonic() + 10
        while len(record_files(records)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [len(p.read_text().splitlines()) for p in record_files(records)] == [5, 5]
        for _ in range(3):  # 3 more records: below the batch, they wait for the period or the end
            assert http("POST", served.url + PREDICT, {"instances": arrays[:1]})[0] == 200
        time.sleep(0.3)
        assert len(record_files(records)) == 2
        assert served.stop() == 0  # SIGTERM: graceful, records flushed
    lines = [json.loads(x) for p in record_files(records) for x in p.read_text().splitlines()]
    assert len(lines) == 13
    assert {line["model_name"] for line in lines} == {"churn"} and {line["version"] for line in lines} == {
        "4"
    }
    assert {(line["endpoint_id"], line["deployed_model_id"]) for line in lines} == {("123", "456")}
    assert all(set(line["instance"]) == set(FEATURES) for line in lines)  # label dropped, arrays named
    stop = [line for line in served.log_lines() if line["event"] == "serving.stop"]
    assert stop[0]["records"]["written"] == 13 and stop[0]["records"]["dropped"] == 0
    frame = predict.load_serving(str(records / "churn") + "/")
    assert len(frame) == 13 and list(frame.columns[:3]) == FEATURES


def test_serves_from_gcs_writes_marked_records_there_and_monitoring_reads_them(
    classifier_dir: Path, gcs_env: str, fake_gcs: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from events import envelope, parse
    from functions.guards.hygiene import check_hygiene
    from tests.samples import storage_event

    model_uri = f"gs://{gcs_env}/models/churn/1"
    for name in ("model.joblib", "metadata.json", "reference.parquet"):
        storage_io.upload_from(classifier_dir / name, f"{model_uri}/{name}")
    records_uri = f"gs://{gcs_env}/serving-records"
    env = {
        "AIP_STORAGE_URI": model_uri,
        "STORAGE_EMULATOR_HOST": fake_gcs.host,  # type: ignore[attr-defined]
        "GOOGLE_CLOUD_PROJECT": "local-project",
        "MLOPS_MODEL_NAME": "churn",
        "MLOPS_SERVING_RECORDS_URI": records_uri,
        "MLOPS_SERVING_RECORDS_BATCH": "50",
        "MLOPS_SERVING_RECORDS_FLUSH_SECONDS": "0.2",
    }
    drifted = generated(120, seed=5, shift=2.0).drop(columns=["target"])
    with serving(env, tmp_path) as served:
        for chunk in range(0, 120, 40):
            rows = drifted.iloc[chunk : chunk + 40].to_dict(orient="records")
            assert http("POST", served.url + PREDICT, {"instances": rows})[0] == 200
        time.sleep(0.5)  # the period: written while serving, not only at the end
        assert storage_io.list_uris(records_uri + "/churn/")
        assert served.stop() == 0
    uris = storage_io.list_uris(records_uri + "/churn/")
    assert uris and all(u.endswith(".jsonl") for u in uris)
    bucket = storage_io.storage_client().bucket(gcs_env)
    for uri in uris:
        blob = bucket.get_blob(storage_io.split_gcs(uri)[1])
        assert blob.metadata == {"mlops-events-output": "true"}
        # The storage trigger's loop guard skips it: records never become training data.
        event = parse.parse(
            envelope.from_json_document(storage_event(blob.name, bucket=gcs_env, metadata=blob.metadata))
        )
        assert "written by a pipeline" in (check_hygiene(event, None, None) or "")

    # Monitoring's default serving data is these records (the whole loop, with the champion
    # from the registry, runs against the Vertex AI emulator in tests/pipelines/test_pipelines_local.py).
    from pipelines.components import data, drift

    monkeypatch.setenv("MLOPS_SERVING_RECORDS_URI", records_uri)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    serving_uri = monitoring_steps._default_serving_uri("churn")
    assert serving_uri == f"{records_uri}/churn/{today}/"
    current = predict.load_serving(serving_uri)
    reference = data.read_table(f"{model_uri}/reference.parquet")
    report = drift.feature_drift(reference, current, FEATURES, 0.2)
    assert report["current_rows"] == 120 and report["missing_features"] == []
    assert "usage" in report["drifted_features"]  # shifted by 2 standard deviations


def test_sampling_zero_writes_nothing(classifier_dir: Path, tmp_path: Path) -> None:
    records = tmp_path / "records"
    env = {
        "AIP_STORAGE_URI": str(classifier_dir),
        "MLOPS_MODEL_NAME": "churn",
        "MLOPS_SERVING_RECORDS_URI": str(records),
        "MLOPS_SERVING_SAMPLE_RATE": "0",
        "MLOPS_SERVING_RECORDS_FLUSH_SECONDS": "0.05",
    }
    with serving(env, tmp_path) as served:
        for _ in range(5):
            assert http("POST", served.url + PREDICT, {"instances": [[10.0, 3.0, "pro"]]})[0] == 200
        time.sleep(0.2)
        assert served.stop() == 0
    (start,) = [line for line in served.log_lines() if line["event"] == "serving.start"]
    assert start["records"] == {"enabled": False, "reason": "MLOPS_SERVING_SAMPLE_RATE is 0"}
    assert not records.exists()


def test_a_large_batch_does_not_hold_up_health_checks(classifier_dir: Path, tmp_path: Path) -> None:
    env = {"AIP_STORAGE_URI": str(classifier_dir)}
    big = {"instances": generated(30000, seed=9)[FEATURES].to_numpy().tolist()}
    batches = 4  # back to back, so the window stays open however fast this machine predicts
    with serving(env, tmp_path) as served:
        result: dict[str, list[object]] = {"status": [], "n": [], "seconds": []}

        def send() -> None:
            for _ in range(batches):
                started = time.monotonic()
                status, body = http("POST", served.url + PREDICT, big, timeout=120)
                result["seconds"].append(time.monotonic() - started)
                result["status"].append(status)
                result["n"].append(len(body["predictions"]))

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.05)
        health_times = []
        while sender.is_alive():
            started = time.monotonic()
            assert http("GET", served.url + HEALTH)[0] == 200
            health_times.append(time.monotonic() - started)
            time.sleep(0.02)
        sender.join()
    assert result["status"] == [200] * batches and result["n"] == [30000] * batches, result
    assert len(health_times) >= 5, (health_times, result)  # checked all along the batches ...
    assert max(health_times) < 1.0, (max(health_times), result)  # ... and health never waited for one


def test_a_model_that_cannot_be_loaded_ends_the_process_with_the_reason(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env({"AIP_STORAGE_URI": str(tmp_path / "nothing-here"), "AIP_HTTP_PORT": str(port)})
    done = subprocess.run(serve_command(), env=env, capture_output=True, timeout=60, text=True)
    assert done.returncode == 3
    (line,) = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert line["severity"] == "ERROR" and line["event"] == "serving.load_failed"
    assert f"cannot load the model from {tmp_path / 'nothing-here'}" in line["message"]
    assert "has no metadata.json" in line["message"]


def test_bad_settings_stop_before_listening() -> None:
    env = clean_env({"AIP_STORAGE_URI": "/m", "MLOPS_SERVING_SAMPLE_RATE": "often"})
    done = subprocess.run(serve_command(), env=env, capture_output=True, timeout=30, text=True)
    assert done.returncode == 2
    assert "MLOPS_SERVING_SAMPLE_RATE must be a number, got 'often'" in done.stderr
